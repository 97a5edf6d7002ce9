// Package wait owns every pause in Swapmeet: the jittered exponential
// backoff between retries, a sleep that ends with its context, and the loop
// that runs a job every interval until its context ends. Retrying code
// elsewhere calls these instead of computing its own waits, so that every
// retry is jittered, bounded and stops at shutdown.
package wait

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a jittered exponential backoff: each wait doubles, from Min up
// to Max, and is drawn from the upper half of its step ("equal jitter"), so
// that many clients retrying together spread out. The zero Min is 100 ms;
// Max must be set. A Backoff is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// NewBackoff returns a Backoff whose waits grow from min to at most max.
func NewBackoff(min, max time.Duration) *Backoff { return &Backoff{Min: min, Max: max} }

// Reset starts the waits over from Min.
func (b *Backoff) Reset() { b.cur = 0 }

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	lo := b.Min
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	b.cur = min(max(2*b.cur, lo), max(b.Max, lo))
	return b.cur/2 + rand.N(b.cur/2+1)
}

// Wait sleeps for the next wait, reporting false if ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits d or until ctx ends, reporting whether it slept fully.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Every runs fn every interval until ctx ends, the first time after one
// interval. A run that takes longer than interval delays the next one rather
// than overlapping it. Every returns when ctx ends.
func Every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// Jittered returns a wait drawn from [d/2, d], for polls that many
// processes run at the same interval.
func Jittered(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}
