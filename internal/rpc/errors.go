// Package rpc is the Connect edge: it authenticates callers, turns protos
// into app calls, and translates every error to a Connect code in one place.
package rpc

import (
	"errors"
	"log/slog"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/swapmeet/swapmeet/internal/app"
)

// codes is the one translation of the app's failures to Connect codes.
var codes = map[app.Code]connect.Code{
	app.CodeInvalid:            connect.CodeInvalidArgument,
	app.CodeUnauthenticated:    connect.CodeUnauthenticated,
	app.CodePermissionDenied:   connect.CodePermissionDenied,
	app.CodeNotFound:           connect.CodeNotFound,
	app.CodeAlreadyExists:      connect.CodeAlreadyExists,
	app.CodeFailedPrecondition: connect.CodeFailedPrecondition,
	app.CodeConflict:           connect.CodeAborted,
	app.CodeUnavailable:        connect.CodeUnavailable,
	app.CodeRateLimited:        connect.CodeResourceExhausted,
	app.CodeQuotaExceeded:      connect.CodeResourceExhausted,
	app.CodeTimeout:            connect.CodeDeadlineExceeded,
	app.CodeCanceled:           connect.CodeCanceled,
}

// toConnect is the one translation from errors to what clients see. Only
// app errors carry their message out; anything else is logged and replaced
// by a generic message, so no SQL or driver detail ever leaks.
func toConnect(log *slog.Logger, procedure string, err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	var ae *app.Error
	if errors.As(err, &ae) {
		code, ok := codes[ae.Code]
		if !ok {
			code = connect.CodeInternal
		}
		out := connect.NewError(code, errors.New(ae.Message))
		if len(ae.Violations) > 0 {
			br := &errdetails.BadRequest{}
			for _, v := range ae.Violations {
				br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
			}
			if d, derr := connect.NewErrorDetail(br); derr == nil {
				out.AddDetail(d)
			}
		}
		if ae.RetryAfter > 0 {
			if d, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(ae.RetryAfter)}); derr == nil {
				out.AddDetail(d)
			}
			out.Meta().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter.Round(time.Second)/time.Second)))
		}
		reason := ae.Reason
		if reason == "" && ae.Code == app.CodeUnavailable {
			// Every outage names itself, however the app worded it.
			reason = app.ReasonUnavailable
		}
		addReason(out, reason)
		if ae.Err != nil {
			log.Warn("request failed", "procedure", procedure, "code", code.String(), "err", err)
		}
		return out
	}
	// Not an *app.Error: a failure kind the adapters marked their
	// drivers' errors with, or a context error. What has no Code is a bug.
	code := app.ErrorCode(err)
	var msg string
	var reason app.Reason
	switch code {
	case app.CodeCanceled:
		msg = "request canceled"
	case app.CodeTimeout:
		msg = "deadline exceeded"
	case app.CodeConflict:
		log.Warn("request failed", "procedure", procedure, "err", err)
		msg, reason = "too much contention; retry the request", app.ReasonContention
	case app.CodeUnavailable:
		log.Error("dependency unavailable", "procedure", procedure, "err", err)
		msg, reason = "a backing service is unavailable; retry shortly", app.ReasonUnavailable
	default:
		log.Error("internal error", "procedure", procedure, "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	out := connect.NewError(codes[code], errors.New(msg))
	addReason(out, reason)
	return out
}

// ReasonDomain is the domain of every google.rpc.ErrorInfo the API sends.
const ReasonDomain = "swapmeet.v1"

// addReason attaches a refusal's reason, for programs: an ErrorInfo of
// ReasonDomain (docs/errors.md lists the reasons).
func addReason(e *connect.Error, reason app.Reason) {
	if reason == "" {
		return
	}
	if d, err := connect.NewErrorDetail(&errdetails.ErrorInfo{Reason: string(reason), Domain: ReasonDomain}); err == nil {
		e.AddDetail(d)
	}
}
