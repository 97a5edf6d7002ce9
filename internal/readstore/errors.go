package readstore

import (
	"context"
	"errors"
	"net"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/swapmeet/swapmeet/internal/fault"
)

// classify marks a server that cannot be reached, a lost connection or a
// disconnected client as fault.ErrUnavailable. Context errors are left to
// the caller, who knows whose deadline it was.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var netErr net.Error
	if errors.As(err, &netErr) || mongo.IsNetworkError(err) || errors.Is(err, mongo.ErrClientDisconnected) {
		return fault.Unavailable(err)
	}
	return err
}
