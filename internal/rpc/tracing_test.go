package rpc_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/swapmeet/swapmeet/cdc/projection"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/live"
)

// endSignal is a span processor that signals each span's end, so that a
// test waits for the spans it needs instead of polling.
type endSignal struct{ ended chan struct{} }

func (s endSignal) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (s endSignal) OnEnd(sdktrace.ReadOnlySpan) {
	select {
	case s.ended <- struct{}{}:
	default: // a signal is already pending: the waiter looks at every span
	}
}
func (s endSignal) Shutdown(context.Context) error   { return nil }
func (s endSignal) ForceFlush(context.Context) error { return nil }

// recordSpans makes an in-memory recorder the global TracerProvider, with
// the W3C propagator, until the test ends. Build the API and the CDC
// after it: the RPC interceptor takes the global provider when built.
func recordSpans(t *testing.T) (*tracetest.SpanRecorder, <-chan struct{}) {
	rec := tracetest.NewSpanRecorder()
	sig := endSignal{ended: make(chan struct{}, 1)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanProcessor(sig))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
		_ = tp.Shutdown(context.Background())
	})
	return rec, sig.ended
}

// waitForSpans waits until found holds for the ended spans, re-checking
// as each span ends.
func waitForSpans(t *testing.T, rec *tracetest.SpanRecorder, ended <-chan struct{}, within time.Duration, what string, found func([]sdktrace.ReadOnlySpan) bool) {
	t.Helper()
	deadline := time.After(within)
	for !found(rec.Ended()) {
		select {
		case <-ended:
		case <-deadline:
			for _, s := range rec.Ended() {
				t.Logf("ended span %q trace %s span %s parent %s links %d", s.Name(), s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID(), len(s.Links()))
			}
			t.Fatalf("no %s within %s", what, within)
		}
	}
}

// TestOneTraceFromWriteToWatch: an UpdateListing that continues a
// caller's trace (its traceparent header), the CDC's application of the
// batch it wrote, and the delivery of the change on a WatchListing stream
// are one trace: the RPC's span is a child of the caller's, cdc.apply a
// child of the RPC's (the write's annotation carries its traceparent
// through the WAL), and watch.deliver a child of cdc.apply (the change
// feed carries the batch's).
func TestOneTraceFromWriteToWatch(t *testing.T) {
	rec, ended := recordSpans(t)
	m := newLiveMarket(t)
	seller := m.signUp("seller")
	created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	id := created.Msg.ListingId

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Resuming at the write's token: the listing is there and unchanged
	// since, so the first message is a heartbeat, and the next listing
	// message is the update's delivery.
	s, err := m.listings.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: id, ResumeToken: created.Msg.ConsistencyToken}))
	if err != nil {
		t.Fatal(err)
	}
	ch := receive(s)
	if r := <-ch; r.err != nil || r.msg.Listing != nil {
		t.Fatalf("first message %v, %v: want a heartbeat", r.msg, r.err)
	}

	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x5a, 0x17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},
		SpanID:     trace.SpanID{0xca, 0x11, 0xe7, 1, 2, 3, 4, 5},
		TraceFlags: trace.FlagsSampled,
	})
	req := authed(&swapmeetv1.UpdateListingRequest{ListingId: id, ExpectedVersion: 1, Title: "Brighter lamp", UpdateMask: mask("title")}, seller.token)
	req.Header().Set("traceparent", "00-"+caller.TraceID().String()+"-"+caller.SpanID().String()+"-01")
	if _, err := m.listings.UpdateListing(ctx, req); err != nil {
		t.Fatal(err)
	}
	got, err := nextListing(t, ch, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Listing.Title != "Brighter lamp" {
		t.Fatalf("delivered %q, want the update", got.Listing.Title)
	}

	var rpc, apply, deliver sdktrace.ReadOnlySpan
	waitForSpans(t, rec, ended, 10*time.Second, "UpdateListing, cdc.apply and watch.deliver spans of one trace", func(spans []sdktrace.ReadOnlySpan) bool {
		rpc, apply, deliver = nil, nil, nil
		for _, s := range spans {
			if s.Name() == "swapmeet.v1.ListingService/UpdateListing" && s.SpanKind() == trace.SpanKindServer {
				rpc = s
			}
		}
		if rpc == nil {
			return false
		}
		for _, s := range spans {
			if s.Name() == projection.ApplySpan && s.Parent().SpanID() == rpc.SpanContext().SpanID() {
				apply = s
			}
		}
		if apply == nil {
			return false
		}
		for _, s := range spans {
			if s.Name() == live.DeliverSpan && s.Parent().SpanID() == apply.SpanContext().SpanID() {
				deliver = s
			}
		}
		return deliver != nil
	})
	if rpc.Parent().SpanID() != caller.SpanID() {
		t.Errorf("the RPC's parent is span %s, want the caller's %s", rpc.Parent().SpanID(), caller.SpanID())
	}
	for _, s := range []sdktrace.ReadOnlySpan{rpc, apply, deliver} {
		if s.SpanContext().TraceID() != caller.TraceID() {
			t.Errorf("span %q is in trace %s, want the caller's %s", s.Name(), s.SpanContext().TraceID(), caller.TraceID())
		}
	}
	attrs := map[string]any{}
	for _, kv := range apply.Attributes() {
		attrs[string(kv.Key)] = kv.Value.AsInterface()
	}
	if attrs["cdc.batch.transactions"] != int64(1) || attrs["cdc.batch.end_lsn"] == nil {
		t.Errorf("cdc.apply attributes %v: want the batch's end LSN and its one transaction", attrs)
	}
	if n, _ := attrs["cdc.batch.documents"].(int64); n < 1 {
		t.Errorf("cdc.apply wrote %v documents, want at least the listing", attrs["cdc.batch.documents"])
	}
	// The delivery links to the stream it was sent on.
	if links := deliver.Links(); len(links) != 1 || links[0].SpanContext.TraceID() == caller.TraceID() {
		t.Errorf("watch.deliver links %v: want the WatchListing stream's span", links)
	}
}
