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

// Reason names, for programs, which rule refused a request: stable across
// releases, documented in docs/errors.md and in the protos. The edge sends
// it as google.rpc.ErrorInfo{domain: "swapmeet.v1", reason}.
type Reason string

// The reasons. A new refusal gets a new reason; an existing one never
// changes its meaning.
const (
	ReasonListingSold          Reason = "LISTING_SOLD"           // a listing of the order is SOLD
	ReasonListingUnavailable   Reason = "LISTING_UNAVAILABLE"    // a listing of the order is WITHDRAWN
	ReasonOwnListing           Reason = "OWN_LISTING"            // the buyer sells a listing of the order
	ReasonMixedSellers         Reason = "MIXED_SELLERS"          // the listings of an order have more than one seller
	ReasonCurrencyMismatch     Reason = "CURRENCY_MISMATCH"      // the listings of an order are priced in more than one currency
	ReasonIdempotencyKeyReused Reason = "IDEMPOTENCY_KEY_REUSED" // the key was used for a different request
	ReasonIdempotencyKeyBusy   Reason = "IDEMPOTENCY_KEY_BUSY"   // a request with the key is still running
	ReasonOrderNotInState      Reason = "ORDER_NOT_IN_STATE"     // the order's status does not allow the change
	ReasonAlreadyReviewed      Reason = "ALREADY_REVIEWED"       // the order has a review
	ReasonEmailTaken           Reason = "EMAIL_TAKEN"            // an account has the email
	ReasonListingNotEditable   Reason = "LISTING_NOT_EDITABLE"   // the listing is SOLD or WITHDRAWN
	ReasonVersionConflict      Reason = "VERSION_CONFLICT"       // expected_version is not the listing's
	ReasonMediaLimit           Reason = "MEDIA_LIMIT"            // the listing has the most images allowed
	ReasonMediaSetChanged      Reason = "MEDIA_SET_CHANGED"      // a new order does not name exactly the listing's images
	ReasonUploadExpired        Reason = "UPLOAD_EXPIRED"         // the upload was not confirmed in time
	ReasonUploadMissing        Reason = "UPLOAD_MISSING"         // no object arrived for the upload
	ReasonUploadMismatch       Reason = "UPLOAD_MISMATCH"        // the object is not what CreateMediaUpload declared, or not an image
	ReasonConsistencyTimeout   Reason = "CONSISTENCY_TIMEOUT"    // the read side did not reach the token in time
	ReasonTokenHistoryPending  Reason = "TOKEN_HISTORY_PENDING"  // the token's database history is not followed yet
	ReasonTokenHistoryLost     Reason = "TOKEN_HISTORY_LOST"     // the token's write was lost with an abandoned database history
	ReasonRateLimited          Reason = "RATE_LIMITED"           // too many attempts from the address or on the account
	ReasonServerBusy           Reason = "SERVER_BUSY"            // every password hash slot is taken
	ReasonQuotaExceeded        Reason = "QUOTA_EXCEEDED"         // a per-seller quota is used up
	ReasonContention           Reason = "CONTENTION"             // transaction retries exhausted
	ReasonUnavailable          Reason = "DEPENDENCY_UNAVAILABLE" // a backing service is down or too slow
)

// Reasons lists every reason above, in the order they are declared.
var Reasons = []Reason{
	ReasonListingSold, ReasonListingUnavailable, ReasonOwnListing, ReasonMixedSellers, ReasonCurrencyMismatch,
	ReasonIdempotencyKeyReused, ReasonIdempotencyKeyBusy, ReasonOrderNotInState, ReasonAlreadyReviewed,
	ReasonEmailTaken, ReasonListingNotEditable, ReasonVersionConflict, ReasonMediaLimit, ReasonMediaSetChanged,
	ReasonUploadExpired, ReasonUploadMissing, ReasonUploadMismatch, ReasonConsistencyTimeout,
	ReasonTokenHistoryPending, ReasonTokenHistoryLost, ReasonRateLimited, ReasonServerBusy,
	ReasonQuotaExceeded, ReasonContention, ReasonUnavailable,
}

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
	// Reason says which rule refused the request, for programs.
	Reason Reason
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

// refusef is errorf for a refusal with a reason.
func refusef(code Code, reason Reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
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
