package app

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/swapmeet/swapmeet/internal/fault"
)

// Every failure has one Code: an *Error's own first, then a context
// error's, then a failure kind's.
func TestErrorCode(t *testing.T) {
	cause := errors.New("connection refused")
	for _, tc := range []struct {
		name string
		err  error
		want Code
	}{
		{"app error", errorf(CodeNotFound, "no such user"), CodeNotFound},
		{"app error over a kind", &Error{Code: CodeUnavailable, Message: "later", Err: fault.Timeout(cause)}, CodeUnavailable},
		{"unavailable", fmt.Errorf("get user: %w", fault.Unavailable(cause)), CodeUnavailable},
		{"statement timeout", fault.Timeout(cause), CodeTimeout},
		{"retries exhausted", fault.Contention(cause), CodeConflict},
		{"deadline before unavailable", fmt.Errorf("%w: %w", fault.ErrUnavailable, context.DeadlineExceeded), CodeTimeout},
		{"canceled", fmt.Errorf("find: %w", context.Canceled), CodeCanceled},
		{"unclassified", cause, 0},
		{"nil", nil, 0},
	} {
		if got := ErrorCode(tc.err); got != tc.want {
			t.Errorf("%s: ErrorCode(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}
