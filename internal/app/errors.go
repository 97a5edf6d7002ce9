// Package app holds Swapmeet's use cases: commands that change the write
// model in Postgres and queries that read the projections. It knows nothing
// of the transport; the rpc package translates its errors at the edge.
package app

import (
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
	CodeConflict                           // a stale version or exhausted retries
	CodeUnavailable                        // a dependency is down or too slow
	CodeRateLimited                        // too many attempts
	CodeQuotaExceeded                      // a per-user quota is used up
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

// ErrorCode returns the Code of err, or 0 when err is not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// Kinds of infrastructure failure. The adapters (Postgres, the read
// store, Redis, the media store) mark their drivers' errors with these,
// and errors.Is finds them in any error the use cases return: they are
// all the edge needs to know of a failure that is not an *Error.
var (
	// ErrUnavailable: a backing service is down or unreachable.
	ErrUnavailable = fault.ErrUnavailable
	// ErrTimeout: a backing service gave up after its own time limit
	// (a Postgres statement timeout).
	ErrTimeout = fault.ErrTimeout
	// ErrContention: a transaction kept colliding with others until its
	// retries ran out.
	ErrContention = fault.ErrContention
)
