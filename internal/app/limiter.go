package app

import (
	"sync"
	"time"
)

// limiter allows n events per key in each fixed window. It lives in one
// process; behind a load balancer each replica limits on its own.
type limiter struct {
	n      int
	window time.Duration

	mu      sync.Mutex
	started time.Time
	counts  map[string]int
}

func newLimiter(n int, window time.Duration) *limiter {
	return &limiter{n: n, window: window, counts: map[string]int{}}
}

// allow records an event for key and reports whether it is within the limit.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.started) >= l.window {
		// A new window forgets every key, which also bounds the map's size.
		l.started = now
		clear(l.counts)
	}
	l.counts[key]++
	return l.counts[key] <= l.n
}
