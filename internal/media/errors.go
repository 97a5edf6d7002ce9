package media

import (
	"context"
	"errors"
	"net"

	"github.com/swapmeet/swapmeet/internal/fault"
)

// classify marks a store that cannot be reached as fault.ErrUnavailable.
// Context errors are left to the caller.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fault.Unavailable(err)
	}
	return err
}
