package system

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestTracingIsOffUnlessAnEndpointIsSet: spans are exported only when an
// OTLP endpoint is set and the SDK is not disabled; settings it cannot
// honour are refused, not ignored.
func TestTracingIsOffUnlessAnEndpointIsSet(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		on, bad bool
	}{
		{env: nil},
		{env: map[string]string{"OTEL_SERVICE_NAME": "api"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "false"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "zipkin"}, bad: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, bad: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, bad: true},
	} {
		on, err := tracingEnabled(func(k string) string { return c.env[k] })
		if (err != nil) != c.bad || on != c.on {
			t.Errorf("%v: on %v, err %v; want on %v, refused %v", c.env, on, err, c.on, c.bad)
		}
	}
}

// TestTracingExportsAndFlushesOnStop: with an endpoint, the spans of the
// process go to the collector over OTLP/HTTP, under the process's
// default service name, and stop exports what is still queued.
func TestTracingExportsAndFlushesOnStop(t *testing.T) {
	bodies := make(chan []byte, 16)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			bodies <- b
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	stop, err := StartTracing(context.Background(), ServiceCDC, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "queued.span")
	span.End()
	stop() // the batcher's delay is 5 s: only the flush exports it now
	select {
	case b := <-bodies:
		if !bytes.Contains(b, []byte("queued.span")) || !bytes.Contains(b, []byte(ServiceCDC)) {
			t.Fatalf("the export does not hold the span of %s: %q", ServiceCDC, b)
		}
	default:
		t.Fatal("stop returned before the queued span was exported")
	}
}
