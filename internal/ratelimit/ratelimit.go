// Package ratelimit counts attempts per key in fixed windows. The counters
// live in Redis so that every API replica sees the same counts; while Redis
// fails, each process falls back to counting on its own, so a limit is
// weakened by the number of replicas but never lifted.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter counts events per key.
type Limiter struct {
	rdb    redis.UniversalClient // nil: count in this process only
	prefix string
	// Timeout bounds each Redis call; past it, the local count decides.
	Timeout time.Duration

	mu    sync.Mutex
	local map[time.Duration]*window
}

// New returns a limiter whose keys start with prefix. rdb may be nil.
func New(rdb redis.UniversalClient, prefix string) *Limiter {
	return &Limiter{rdb: rdb, prefix: prefix, Timeout: 100 * time.Millisecond, local: map[time.Duration]*window{}}
}

// Decision is the outcome of one attempt.
type Decision struct {
	Allowed bool
	// RetryAfter is when the window ends, if not Allowed.
	RetryAfter time.Duration
}

// countScript increments a window's counter, starting the window on the
// first attempt, and returns the count and the milliseconds left.
var countScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`)

// Allow records an attempt of kind by id and reports whether it is within
// limit attempts per window. A limit below 1 allows everything.
func (l *Limiter) Allow(ctx context.Context, kind, id string, limit int, per time.Duration) Decision {
	if limit < 1 {
		return Decision{Allowed: true}
	}
	key := l.key(kind, id)
	// This process's own count never exceeds the shared one, so once it is
	// over the limit the answer is known without asking Redis: a flood
	// costs each replica at most limit round trips per key and window.
	n, left := l.window(per).add(key, time.Now())
	if n <= limit {
		n, left = l.shared(ctx, countScript, key, n, left, per.Milliseconds())
	}
	return decide(n, limit, left)
}

// countOnlyScript reads a window's counter and the milliseconds left
// without counting.
var countOnlyScript = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
return {n, ttl}`)

// Over reports whether kind by id has already been counted limit times or
// more in the current window, without counting anything, and when the
// window ends. A limit below 1 is never over.
func (l *Limiter) Over(ctx context.Context, kind, id string, limit int, per time.Duration) Decision {
	if limit < 1 {
		return Decision{Allowed: true}
	}
	key := l.key(kind, id)
	n, left := l.window(per).peek(key, time.Now())
	if n < limit {
		n, left = l.shared(ctx, countOnlyScript, key, n, left)
	}
	return decide(n+1, limit, left)
}

func (l *Limiter) key(kind, id string) string { return l.prefix + "limit:" + kind + ":" + digest(id) }

// shared runs script on key in Redis and returns the shared count and the
// time left in its window, or n and left (this process's own) when there
// is no Redis or it does not answer within Timeout.
func (l *Limiter) shared(ctx context.Context, script *redis.Script, key string, n int, left time.Duration, args ...any) (int, time.Duration) {
	if l.rdb == nil {
		return n, left
	}
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	res, err := script.Run(ctx, l.rdb, []string{key}, args...).Int64Slice()
	if err != nil || len(res) != 2 {
		return n, left
	}
	return int(res[0]), time.Duration(max(res[1], 0)) * time.Millisecond
}

func decide(n, limit int, left time.Duration) Decision {
	if n <= limit {
		return Decision{Allowed: true}
	}
	return Decision{RetryAfter: max(left, time.Second).Round(time.Second)}
}

// digest keeps what identifies a client (an email, an address) out of Redis
// while keeping keys short.
func digest(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:12])
}

func (l *Limiter) window(per time.Duration) *window {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.local[per]
	if !ok {
		w = &window{per: per, counts: map[string]int{}}
		l.local[per] = w
	}
	return w
}

// window is the in-process fallback: every key of one window length.
type window struct {
	per time.Duration

	mu      sync.Mutex
	started time.Time
	counts  map[string]int
}

func (w *window) add(key string, now time.Time) (int, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.started) >= w.per {
		// A new window forgets every key, which also bounds the map's size.
		w.started = now
		clear(w.counts)
	}
	w.counts[key]++
	return w.counts[key], w.per - now.Sub(w.started)
}

func (w *window) peek(key string, now time.Time) (int, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.started) >= w.per {
		return 0, w.per
	}
	return w.counts[key], w.per - now.Sub(w.started)
}
