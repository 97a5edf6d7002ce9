package live

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/swapmeet/swapmeet/internal/feed"
)

// TestDeliveryOutsideATraceCostsNothing: a change without a trace (every
// change while tracing is off) is sent without a span or an allocation,
// and an entry's traceparent is read back into the span it names.
func TestDeliveryOutsideATraceCostsNothing(t *testing.T) {
	ctx := context.Background()
	sends := 0
	send := func() error { sends++; return nil }
	sc := traceOf(feed.Entry{})
	if sc.IsValid() {
		t.Fatal("an entry without a traceparent has a trace")
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = deliver(ctx, sc, send) }); allocs != 0 {
		t.Errorf("a delivery outside a trace allocates %v times", allocs)
	}
	if sends == 0 {
		t.Fatal("nothing was sent")
	}
	sc = traceOf(feed.Entry{TraceParent: "00-5a170102030405060708090a0b0c0d0e-ca11e70102030405-01"})
	if !sc.IsValid() || sc.TraceID().String() != "5a170102030405060708090a0b0c0d0e" || sc.SpanID().String() != "ca11e70102030405" || !sc.IsRemote() {
		t.Fatalf("traceparent read as %+v", sc)
	}
	if bad := traceOf(feed.Entry{TraceParent: "not a traceparent"}); bad.IsValid() {
		t.Fatal("a malformed traceparent gave a trace")
	}
	if got := newer(sc, trace.SpanContext{}); !got.Equal(sc) {
		t.Fatal("a change without a trace replaced one with a trace")
	}
}
