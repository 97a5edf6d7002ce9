package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The default service names of the processes' traces; OTEL_SERVICE_NAME
// overrides them.
const (
	ServiceAPI = "swapmeet-api"
	ServiceCDC = "swapmeet-cdc"
)

// tracingFlushTimeout bounds how long a stopping process waits for the
// spans it has not exported yet.
const tracingFlushTimeout = 5 * time.Second

// StartTracing configures the process's tracing from the standard
// OpenTelemetry variables, and returns stop, which exports the spans not
// yet exported (for at most 5 s) and ends it. `serve` and `cdc` call it
// first thing.
//
// The W3C TraceContext propagator is always installed, so that a
// caller's traceparent reaches the annotation of its writes (and through
// them the CDC and the Watch streams) even when this process exports
// nothing. Spans are exported only when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, over OTLP/HTTP (protobuf),
// unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none; otherwise
// the global TracerProvider stays the no-op one and tracing costs
// nothing. The exporter reads the other OTEL_EXPORTER_OTLP_* variables
// (headers, timeout, compression, certificates), the provider
// OTEL_TRACES_SAMPLER(_ARG) and the batcher OTEL_BSP_*. The service name
// is OTEL_SERVICE_NAME, else service (ServiceAPI, ServiceCDC); more
// resource attributes come from OTEL_RESOURCE_ATTRIBUTES.
func StartTracing(ctx context.Context, service string, log *slog.Logger) (stop func(), err error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	on, err := tracingEnabled(os.Getenv)
	if err != nil || !on {
		return func() {}, err
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", service),
			attribute.String("service.version", BuildInfo().Version),
		),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithFromEnv(), // last: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	} else if err != nil {
		log.Warn("tracing: part of the resource is missing", "err", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err) }))
	otel.SetTracerProvider(tp)
	name, _ := res.Set().Value("service.name")
	log.Info("tracing: exporting spans over OTLP/HTTP", "service", name.AsString())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			log.Warn("tracing: flushing the last spans failed", "err", err)
		}
	}, nil
}

// tracingEnabled reads whether spans are exported from the OTEL_*
// variables, and refuses a setting it cannot honour.
func tracingEnabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e {
	case "", "otlp":
	case "none":
		return false, nil
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: want otlp or none", e)
	}
	var errs []error
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(name)); p != "" && p != "http/protobuf" {
			errs = append(errs, fmt.Errorf("%s=%q: only http/protobuf is supported", name, p))
		}
	}
	on := false
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		on = true
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want a URL like http://collector:4318", name, v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	return on, nil
}
