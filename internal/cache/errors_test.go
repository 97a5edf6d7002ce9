package cache

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/fault"
)

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"network", refused, true},
		{"closed", redis.ErrClosed, true},
		{"pool timeout", redis.ErrPoolTimeout, true},
		{"breaker open", ErrSkipped, true},
		{"deadline", context.DeadlineExceeded, false},
		{"script error", errors.New("ERR user_script:1: oops"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if errors.Is(got, fault.ErrUnavailable) != tc.unavailable || !errors.Is(got, tc.err) {
				t.Fatalf("classify(%v) = %v", tc.err, got)
			}
		})
	}
}
