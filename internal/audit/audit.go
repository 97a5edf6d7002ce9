// Package audit is the annotation every write carries into the WAL: who
// made it, through which request, and the trace it belongs to. The API
// writes it as the first statement of each transaction that changes a
// published table (pg_logical_emit_message, transactional), so it is
// decoded inside that transaction and only if it commits; the CDC reads it
// back and attaches it to the transaction's row changes in the history.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Prefix is the logical decoding message prefix of an annotation. The
// version changes when the content's meaning does; a reader skips
// prefixes it does not know.
const Prefix = "swapmeet.audit.v1"

// System is the actor of the service's own jobs.
const System = "system"

// Annotation is what one transaction says about itself. No personal data:
// user ids, never emails or addresses.
type Annotation struct {
	// Actor is the user id that made the change, or System.
	Actor string `json:"actor"`
	// RPC is the full procedure name ("swapmeet.v1.ListingService/UpdateListing"),
	// or a job's name ("job/thumbnails").
	RPC string `json:"rpc,omitempty"`
	// RequestID identifies the request (its X-Request-Id).
	RequestID string `json:"request_id,omitempty"`
	// IdempotencyKey is the client's key, for the writes that take one.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// TraceParent is the W3C traceparent of the span that wrote.
	TraceParent string `json:"traceparent,omitempty"`
}

// MaxSize bounds an encoded annotation: every field is bounded where it
// is accepted, and a decoder refuses more.
const MaxSize = 1024

// Encode returns the message content.
func (a Annotation) Encode() []byte {
	b, _ := json.Marshal(a) // strings only: cannot fail
	return b
}

// Decode parses a message content.
func Decode(b []byte) (Annotation, error) {
	var a Annotation
	if len(b) > MaxSize {
		return a, fmt.Errorf("annotation of %d bytes exceeds %d", len(b), MaxSize)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("decode annotation: %w", err)
	}
	return a, nil
}

// Request is what the edge knows about the request a write serves.
type Request struct {
	RPC       string
	RequestID string
}

type requestKey struct{}

// WithRequest marks ctx as serving r.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom is the request ctx serves, if any.
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}

// Job marks ctx as one of the service's own jobs, named name.
func Job(ctx context.Context, name string) context.Context {
	return WithRequest(ctx, Request{RPC: "job/" + name})
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// ValidRequestID reports whether a client's X-Request-Id can be kept: up
// to 64 characters of letters, digits and . _ : -.
func ValidRequestID(id string) bool { return requestIDRE.MatchString(id) }

// TraceParent is the W3C traceparent of the span in ctx, "" without one.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// SpanOf is the span a W3C traceparent names; invalid for "" or a
// malformed one.
func SpanOf(traceParent string) trace.SpanContext {
	if traceParent == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceParent})
	return trace.SpanContextFromContext(ctx)
}

// For is the annotation of a write that actor makes while serving ctx's
// request.
func For(ctx context.Context, actor, idempotencyKey string) Annotation {
	r := RequestFrom(ctx)
	return Annotation{Actor: actor, RPC: r.RPC, RequestID: r.RequestID, IdempotencyKey: idempotencyKey, TraceParent: TraceParent(ctx)}
}
