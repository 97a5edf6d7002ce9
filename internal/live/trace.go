package live

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/feed"
)

// TracerName names the Watch streams' tracer.
const TracerName = "github.com/swapmeet/swapmeet/internal/live"

// DeliverSpan is the name of the span that covers the sending of a change
// to one stream, in the trace of the batch that applied the change.
const DeliverSpan = "watch.deliver"

// traceOf is the span a feed entry's traceparent names: the CDC's span of
// the batch that applied the entry's changes. It is invalid when the
// entry has none, the common case when tracing is off.
func traceOf(e feed.Entry) trace.SpanContext { return audit.SpanOf(e.TraceParent) }

// deliver runs send, the sending of a change to a stream, in a span that
// is a child of the batch's span sc and links to the stream's own span
// (in ctx). Without a valid sc it only sends: a stream outside any trace
// costs nothing more.
func deliver(ctx context.Context, sc trace.SpanContext, send func() error) error {
	if !sc.IsValid() {
		return send()
	}
	var opts []trace.SpanStartOption
	if stream := trace.SpanContextFromContext(ctx); stream.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: stream}))
	}
	_, span := otel.Tracer(TracerName).Start(trace.ContextWithRemoteSpanContext(ctx, sc), DeliverSpan, opts...)
	err := send()
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	return err
}

// newer is the trace of the newer of two changes: b's, unless it has
// none.
func newer(a, b trace.SpanContext) trace.SpanContext {
	if b.IsValid() {
		return b
	}
	return a
}
