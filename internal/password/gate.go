package password

import (
	"context"
	"errors"
	"runtime"
	"time"
)

// Gate bounds how many hashes run at once in this process. Each argon2id
// hash holds MemoryKiB of memory for its whole run, so an unbounded number
// of concurrent sign-ins is an unbounded amount of memory.
type Gate struct {
	slots chan struct{}
	wait  time.Duration
}

// ErrBusy means no hashing slot came free within the gate's wait.
var ErrBusy = errors.New("password hashing is at capacity")

// DefaultMemoryBudget is what the hashes in flight may hold together when
// the concurrency is left to Size.
const DefaultMemoryBudget = 256 << 20

// Size is the default concurrency: half the cores, so that hashing never
// takes every core from the requests that do not hash, at least one, and
// no more than budget bytes of hashing memory at p's cost.
func Size(p Params, budget int64) int {
	n := max(1, runtime.GOMAXPROCS(0)/2)
	perHash := int64(p.MemoryKiB) << 10
	if perHash > 0 {
		n = min(n, max(1, int(budget/perHash)))
	}
	return n
}

// NewGate lets n hashes run at once; a caller waits at most wait for a slot.
func NewGate(n int, wait time.Duration) *Gate {
	return &Gate{slots: make(chan struct{}, max(1, n)), wait: wait}
}

// Capacity is how many hashes may run at once.
func (g *Gate) Capacity() int { return cap(g.slots) }

// Do runs fn in a slot, or returns ErrBusy if none frees up in time, or
// ctx's error if the caller goes away first.
func (g *Gate) Do(ctx context.Context, fn func()) error {
	select {
	case g.slots <- struct{}{}:
	default:
		t := time.NewTimer(g.wait)
		defer t.Stop()
		select {
		case g.slots <- struct{}{}:
		case <-t.C:
			return ErrBusy
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { <-g.slots }()
	fn()
	return nil
}
