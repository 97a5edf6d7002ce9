// Package retry holds the waits the CDC's parts share: a jittered
// exponential backoff and a sleep that ends with its context.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a jittered exponential backoff, from 100 ms up to its bound.
type Backoff struct {
	cur, max time.Duration
}

// NewBackoff returns a Backoff whose waits grow to at most max.
func NewBackoff(max time.Duration) *Backoff { return &Backoff{max: max} }

// Reset starts the waits over.
func (b *Backoff) Reset() { b.cur = 0 }

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	b.cur = min(max(2*b.cur, 100*time.Millisecond), b.max)
	return b.cur/2 + rand.N(b.cur/2+1)
}

// Sleep waits d or until ctx ends, reporting whether it slept fully.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
