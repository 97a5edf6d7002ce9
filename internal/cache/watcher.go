package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/wait"
)

var errSilent = errors.New("the announcement channel went silent")

// ErrBehind means the projections did not reach a token's position in time.
var ErrBehind = errors.New("projections did not catch up with the consistency token in time")

// Reasons the watcher empties the near cache whole, as the metrics name them.
const (
	resetSubscribed = "subscribed" // a new subscription: anything may have been missed
	resetGap        = "gap"        // a sequence number was skipped
	resetLagging    = "lagging"    // the position moved without an announcement reaching us
	resetBulk       = "bulk"       // a batch evicted too many keys to list
)

// Watcher tracks the applied position for a whole process: one Redis
// subscription serves every waiting request, and keeps the process's near
// cache exact. It drops what each announcement evicted from the near
// cache before it takes the announced position as applied.
type Watcher struct {
	rdb     redis.UniversalClient
	keys    AppliedKeys
	log     *slog.Logger
	near    *Near                              // nil: none
	dropped func(reason string, keys []string) // tests observe the drops
	resolve func(context.Context)              // nil: none (WithResolve)
	applied atomic.Uint64
	waiters atomic.Int64
	live    atomic.Bool // subscribed, and caught up at subscription

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every advance

	// Owned by Run.
	seq    uint64    // the last announcement accounted for
	behind uint64    // a sequence number seen in Redis but not announced to us yet
	since  time.Time // when behind was first seen
}

// Timing of Run's checks.
const (
	pollWaiting  = 100 * time.Millisecond // poll the position this often while requests wait
	pollIdle     = time.Second            // and this often otherwise
	lagAfter     = 500 * time.Millisecond // an announcement later than this is taken as lost
	pingAfter    = time.Second            // ping a subscription silent this long
	silentAfter  = 3 * time.Second        // and give it up when silent this long
	resubscribe  = 500 * time.Millisecond // first pause before subscribing again
	redisTimeout = 500 * time.Millisecond // bounds each call Run makes
	// resolveTimeout bounds WithResolve's call before a reset; past it the
	// reset goes on (a read store that does not answer serves nothing).
	resolveTimeout = time.Second
)

// NewWatcher returns a Watcher; call Run to feed it.
func NewWatcher(rdb redis.UniversalClient, keys AppliedKeys, log *slog.Logger) *Watcher {
	return &Watcher{rdb: rdb, keys: keys, log: log, changed: make(chan struct{})}
}

// WithNear makes the watcher keep n exact; a nil n is no near cache. Until
// Run has subscribed, n is suspended.
func (w *Watcher) WithNear(n *Near) *Watcher {
	w.near = n
	w.suspend()
	return w
}

// WithResolve makes the watcher call f before every reset of the near
// cache: the API reloads the projections pointer there. A rebuild switches
// the pointer, then announces an eviction of everything; a process that
// reloads the pointer only on its own schedule could otherwise load a
// document from the generation the rebuild left, after the reset, and keep
// it in its near cache (after a failover, a state that no longer exists).
func (w *Watcher) WithResolve(f func(context.Context)) *Watcher {
	w.resolve = f
	return w
}

// forget, reset and suspend are the watcher's only ways to drop from the
// near cache.
func (w *Watcher) forget(keys []string) {
	w.near.forget(keys)
	w.observe("", keys)
}

func (w *Watcher) reset(reason string) {
	if w.resolve != nil {
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		w.resolve(ctx)
		cancel()
	}
	w.near.reset(reason)
	w.observe(reason, nil)
}

func (w *Watcher) suspend() {
	w.near.suspend()
	w.observe("suspended", nil)
}

func (w *Watcher) observe(reason string, keys []string) {
	if w.dropped != nil {
		w.dropped(reason, keys)
	}
}

// Applied is the highest position known to be applied.
func (w *Watcher) Applied() uint64 { return w.applied.Load() }

// Subscribed reports whether Run follows the CDC's announcements now: while
// it does not, token reads wait on polling alone and the near cache is
// suspended (a process is not ready).
func (w *Watcher) Subscribed() bool { return w.live.Load() }

func (w *Watcher) advance(lsn uint64) {
	for {
		cur := w.applied.Load()
		if lsn <= cur {
			return
		}
		if w.applied.CompareAndSwap(cur, lsn) {
			break
		}
	}
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// Wait blocks until the applied position reaches lsn or ctx ends, in which
// case it returns ErrBehind.
func (w *Watcher) Wait(ctx context.Context, lsn uint64) error {
	if lsn == 0 || w.applied.Load() >= lsn {
		return nil
	}
	w.waiters.Add(1)
	defer w.waiters.Add(-1)
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		if w.applied.Load() >= lsn {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for %s, applied %s)", ErrBehind, consistency.FormatLSN(lsn), consistency.FormatLSN(w.applied.Load()))
		}
	}
}

// Run follows the CDC's announcements until ctx ends, subscribing again
// whenever the subscription fails or goes silent. The position advances
// only in one of two ways, each of which leaves the near cache holding
// nothing older than the position:
//
//   - an announcement whose sequence number follows the last one: its
//     evicted keys are forgotten first (all of them for a bulk batch);
//   - a position read from Redis (after subscribing, or when announcements
//     seem lost): the near cache is reset after the read and before the
//     advance, so whatever it holds was read from Redis after the CDC
//     had tombstoned everything up to that position.
//
// Anything else (a skipped or repeated number) resets the near cache.
// While no subscription is up, the near cache is suspended.
func (w *Watcher) Run(ctx context.Context) {
	backoff := wait.NewBackoff(resubscribe, 10*time.Second)
	for {
		subscribed, err := w.follow(ctx)
		w.live.Store(false)
		w.suspend()
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			backoff.Reset() // a new failure, not the same one again
		}
		in := backoff.Next()
		w.log.Warn("following the applied position: subscribing again", "err", err, "in", in)
		if !wait.Sleep(ctx, in) {
			return
		}
	}
}

// follow runs one subscription until it fails or ctx ends, and reports
// whether it got as far as subscribing.
func (w *Watcher) follow(ctx context.Context) (subscribed bool, err error) {
	sub := w.rdb.Subscribe(ctx, w.keys.Channel)
	defer sub.Close()
	done := make(chan struct{})
	defer close(done)
	in := make(chan any, 64)
	go func() {
		for {
			m, err := sub.Receive(ctx)
			var v any = m
			if err != nil {
				v = err
			}
			select {
			case in <- v:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	tick := time.NewTicker(pollWaiting)
	defer tick.Stop()
	heard, pinged, polled := time.Now(), time.Time{}, time.Now()
	for {
		select {
		case <-ctx.Done():
			return subscribed, ctx.Err()
		case v := <-in:
			heard = time.Now()
			switch m := v.(type) {
			case error:
				return subscribed, m
			case *redis.Subscription:
				if m.Kind != "subscribe" {
					continue
				}
				if err := w.catchUp(ctx, resetSubscribed); err != nil {
					return subscribed, err
				}
				subscribed = true
				w.live.Store(true)
			case *redis.Message:
				if subscribed { // a connection confirms its subscription first
					w.announced(m.Payload)
				}
			}
		case now := <-tick.C:
			if now.Sub(heard) >= silentAfter {
				return subscribed, errSilent
			}
			if now.Sub(heard) >= pingAfter && now.Sub(pinged) >= pingAfter {
				pinged = now
				if err := sub.Ping(ctx); err != nil {
					return subscribed, err
				}
			}
			if subscribed && (w.waiters.Load() > 0 || now.Sub(polled) >= pollIdle) {
				polled = now
				if err := w.poll(ctx); err != nil {
					return subscribed, err
				}
			}
		}
	}
}

// announced applies one announcement.
func (w *Watcher) announced(payload string) {
	a, err := parseAnnouncement(payload)
	if err != nil {
		w.log.Warn("ignoring an announcement", "err", err)
		return
	}
	switch {
	case a.seq != w.seq+1:
		w.reset(resetGap)
	case a.evicted.All:
		w.reset(resetBulk)
	default:
		w.forget(a.evicted.Keys)
	}
	w.seq = a.seq
	w.behind = 0
	w.advance(a.lsn)
}

// poll looks for announcements that should have reached us. Announcements
// seen in Redis are given lagAfter to arrive (they are usually in flight);
// after that, the watcher catches up by reading the position.
func (w *Watcher) poll(ctx context.Context) error {
	lsn, seq, err := w.read(ctx)
	if err != nil {
		return err
	}
	switch {
	case seq == w.seq && lsn <= w.applied.Load():
		w.behind = 0 // up to date
	case seq < w.seq: // the sequence went back: Redis lost data
		w.adopt(lsn, seq, resetGap)
	case w.behind == 0 || w.seq >= w.behind:
		// Ahead of us for the first time, or again after the last
		// outstanding ones arrived: they are probably in flight.
		w.behind, w.since = max(seq, w.seq+1), time.Now()
	case time.Since(w.since) >= lagAfter:
		w.adopt(lsn, seq, resetLagging)
	}
	return nil
}

// catchUp reads the position and the sequence from Redis and adopts them.
func (w *Watcher) catchUp(ctx context.Context, reason string) error {
	lsn, seq, err := w.read(ctx)
	if err != nil {
		return err
	}
	w.adopt(lsn, seq, reason)
	return nil
}

// read reads the applied position and the sequence number from Redis.
func (w *Watcher) read(ctx context.Context) (lsn, seq uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	if lsn, seq, err = ReadApplied(ctx, w.rdb, w.keys); err != nil {
		return 0, 0, fmt.Errorf("read the applied position: %w", err)
	}
	return lsn, seq, nil
}

// adopt takes a position and sequence number just read from Redis as the
// watcher's own, resetting the near cache first: whatever it keeps from
// now on was read from Redis after everything up to lsn was tombstoned.
func (w *Watcher) adopt(lsn, seq uint64, reason string) {
	w.reset(reason)
	w.seq, w.behind = seq, 0
	w.advance(lsn)
}
