package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/fault"
)

// The table sees app errors, the adapters' failure kinds, context errors
// and Connect errors; anything else is internal.
func TestToConnect(t *testing.T) {
	cause := errors.New("dial tcp: connection refused")
	kind := func(k error) error { return fmt.Errorf("get user: %w: %w", k, cause) }
	for _, tc := range []struct {
		name string
		err  error
		want connect.Code
	}{
		{"app error", &app.Error{Code: app.CodeNotFound, Message: "user not found"}, connect.CodeNotFound},
		{"rate limited", &app.Error{Code: app.CodeRateLimited, Message: "slow down"}, connect.CodeResourceExhausted},
		{"stale version", &app.Error{Code: app.CodeConflict, Message: "reload"}, connect.CodeAborted},
		{"unavailable", kind(fault.ErrUnavailable), connect.CodeUnavailable},
		{"statement timeout", kind(fault.ErrTimeout), connect.CodeDeadlineExceeded},
		{"retries exhausted", kind(fault.ErrContention), connect.CodeAborted},
		{"deadline", fmt.Errorf("update: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded},
		{"deadline before unavailable", fmt.Errorf("%w: %w", fault.ErrUnavailable, context.DeadlineExceeded), connect.CodeDeadlineExceeded},
		{"canceled", context.Canceled, connect.CodeCanceled},
		{"connect error", connect.NewError(connect.CodeUnauthenticated, errors.New("sign in")), connect.CodeUnauthenticated},
		{"app error over a kind", &app.Error{Code: app.CodeUnavailable, Message: "later", Err: kind(fault.ErrTimeout)}, connect.CodeUnavailable},
		{"unclassified", cause, connect.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := toConnect(slog.New(slog.NewTextHandler(io.Discard, nil)), "/test", tc.err)
			if got := connect.CodeOf(err); got != tc.want {
				t.Fatalf("code %v, want %v (%v)", got, tc.want, err)
			}
			if tc.want == connect.CodeInternal && err.Error() != "internal: internal error" {
				t.Fatalf("an internal error leaks its cause: %v", err)
			}
		})
	}
}
