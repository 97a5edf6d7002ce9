package projection

import (
	"context"

	"github.com/jackc/pglogrepl"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/swapmeet/swapmeet/internal/audit"
)

// TracerName names the CDC's tracer.
const TracerName = "github.com/swapmeet/swapmeet/cdc"

// ApplySpan is the name of the span that covers the application of one
// batch.
const ApplySpan = "cdc.apply"

// The attributes of an ApplySpan.
const (
	attrEndLSN       = "cdc.batch.end_lsn"
	attrTransactions = "cdc.batch.transactions"
	attrDocuments    = "cdc.batch.documents"
)

// startApply starts the span of a batch's application. A batch whose
// transactions were written in one trace (a single write, or writes of
// one request) is applied in that trace, as a child of the span that
// wrote; a batch of several traces starts its own and links to each.
// The tracer is the global one at the time, which is a no-op unless the
// process configured tracing.
func startApply(ctx context.Context, t *touched, end pglogrepl.LSN) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String(attrEndLSN, end.String()), attribute.Int(attrTransactions, len(t.ends))),
	}
	switch tps := t.TraceParents(); len(tps) {
	case 0:
	case 1:
		if sc := audit.SpanOf(tps[0]); sc.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	default:
		links := make([]trace.Link, 0, len(tps))
		for _, tp := range tps {
			if sc := audit.SpanOf(tp); sc.IsValid() {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
		opts = append(opts, trace.WithLinks(links...))
	}
	return otel.Tracer(TracerName).Start(ctx, ApplySpan, opts...)
}

// endApply ends a batch's span with the documents it wrote and its
// outcome.
func endApply(span trace.Span, documents int64, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int64(attrDocuments, documents))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
