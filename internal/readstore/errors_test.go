package readstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/swapmeet/swapmeet/internal/fault"
)

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"network", fmt.Errorf("find users 1: %w", refused), true},
		{"disconnected", fmt.Errorf("query listings: %w", mongo.ErrClientDisconnected), true},
		{"deadline", fmt.Errorf("find users 1: %w", context.DeadlineExceeded), false},
		{"not found", ErrNotFound, false},
		{"other", errors.New("(BadValue) unknown operator"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if errors.Is(got, fault.ErrUnavailable) != tc.unavailable || !errors.Is(got, tc.err) {
				t.Fatalf("classify(%v) = %v", tc.err, got)
			}
		})
	}
}
