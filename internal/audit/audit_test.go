package audit

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestAnnotationRoundTrip(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	ctx = WithRequest(ctx, Request{RPC: "swapmeet.v1.OrderService/PlaceOrder", RequestID: "r-1"})
	a := For(ctx, "0193aaaa-0000-7000-8000-000000000001", "key-1")
	if a.TraceParent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent %q", a.TraceParent)
	}
	got, err := Decode(a.Encode())
	if err != nil || got != a {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, a)
	}
	if len(a.Encode()) > MaxSize/2 {
		t.Fatalf("an annotation of %d bytes: the fields are bounded well under %d", len(a.Encode()), MaxSize)
	}
	if _, err := Decode([]byte(`{"actor":"` + strings.Repeat("x", MaxSize) + `"}`)); err == nil {
		t.Fatal("an oversized annotation was decoded")
	}
	if _, err := Decode([]byte(`not json`)); err == nil {
		t.Fatal("garbage was decoded")
	}
	if For(context.Background(), System, "").TraceParent != "" {
		t.Fatal("a traceparent without a span")
	}
}

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"price-cut-1": true, "0193aaaa-0000-7000-8000-000000000001": true, "a.b_c:d": true,
		"": false, strings.Repeat("x", 65): false, "has space": false, "new\nline": false, "é": false,
	} {
		if ValidRequestID(id) != want {
			t.Errorf("ValidRequestID(%q) = %v", id, !want)
		}
	}
}
