package cache

import (
	"context"
	"errors"
	"net"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/fault"
)

// classify marks a Redis that cannot be reached, a closed client and a
// pool with no free connection as fault.ErrUnavailable. Context errors
// are left to the caller.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) {
		return fault.Unavailable(err)
	}
	return err
}
