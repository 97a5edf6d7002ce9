// Package app holds Swapmeet's use cases: commands that change the write
// model in Postgres and queries that read the projections. It knows nothing
// of the transport; the rpc package translates its errors at the edge.
//
// Every failure has one Code (ErrorCode): the use cases return an *Error
// with its Code, and the adapters' failure kinds (package fault) and the
// context's errors each stand for one Code. rpc maps each Code to a
// Connect code, in one table.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/swapmeet/swapmeet/internal/fault"
)

// Code classifies a failure for the caller; rpc maps each to a Connect code.
type Code int

const (
	CodeInvalid            Code = iota + 1 // the request is malformed
	CodeUnauthenticated                    // no valid session
	CodePermissionDenied                   // known resource, wrong caller
	CodeNotFound                           // no such resource (or not yours to know of)
	CodeAlreadyExists                      // a uniqueness rule
	CodeFailedPrecondition                 // a business rule refuses the state change
	CodeConflict                           // a stale version, or retries exhausted (fault.ErrContention)
	CodeUnavailable                        // a dependency is down or too slow (fault.ErrUnavailable)
	CodeRateLimited                        // too many attempts
	CodeQuotaExceeded                      // a per-user quota is used up
	CodeTimeout                            // a deadline passed (the request's, or fault.ErrTimeout)
	CodeCanceled                           // the caller went away
)

// FieldViolation names one invalid request field.
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a failure the caller can act on. Its message is safe to show.
type Error struct {
	Code       Code
	Message    string
	Violations []FieldViolation
	// RetryAfter, for CodeRateLimited, is when trying again may succeed.
	RetryAfter time.Duration
	Err        error // the cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the Code of err: an *Error's own, else the Code its
// failure kind or context error stands for, else 0 (a bug: internal).
func ErrorCode(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, fault.ErrTimeout):
		return CodeTimeout
	case errors.Is(err, fault.ErrContention):
		return CodeConflict
	case errors.Is(err, fault.ErrUnavailable):
		return CodeUnavailable
	}
	return 0
}
