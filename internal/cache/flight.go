package cache

import (
	"context"
	"errors"
	"sync"
)

// Identical misses in one process share one load: a flood of the same
// cold page or document costs the read store one query, not one per
// request. Sharing must not break read-your-writes, so a flight records
// the applied position it started at (its floor: everything up to there
// was in the read store before its load began), and a reader joins it
// only if the floor covers the reader's own: the position its consistency
// token made it wait for (WithFloor), 0 without one. A reader whose token
// is newer starts a flight of its own, which later readers join.

type floorKey struct{}

// WithFloor records that the caller has waited until lsn was applied: a
// shared load it joins must have started at or after that position.
func WithFloor(ctx context.Context, lsn uint64) context.Context {
	return context.WithValue(ctx, floorKey{}, lsn)
}

func floorOf(ctx context.Context) uint64 {
	lsn, _ := ctx.Value(floorKey{}).(uint64)
	return lsn
}

type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	floor   uint64
	done    chan struct{}
	waiters int // readers that joined (tests watch it)

	val any
	err error
}

// join returns the flight of key that reader with floor may share, or a
// new one that the caller must run (leader true), starting at applied.
func (fs *flights) join(key string, floor, applied uint64) (f *flight, leader bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key]; ok && f.floor >= floor {
		f.waiters++
		return f, false
	}
	if fs.m == nil {
		fs.m = map[string]*flight{}
	}
	f = &flight{floor: applied, done: make(chan struct{})}
	fs.m[key] = f // a newer flight replaces an older one for later readers
	return f, true
}

// land ends f and forgets it, unless a newer flight has taken its key.
func (fs *flights) land(key string, f *flight) {
	fs.mu.Lock()
	if fs.m[key] == f {
		delete(fs.m, key)
	}
	fs.mu.Unlock()
	close(f.done)
}

// loadShared loads key's value once for every reader that may share it,
// fills Redis, and then the near cache. Only the reader that loads puts
// the value in the near cache, with the ticket (t) it took before its
// load: a reader that joined later holds a later ticket, which would not
// see an announcement that dropped the key after the load had read the
// store but before that reader arrived.
func loadShared[T any](ctx context.Context, c *Cache, shelf Shelf, key string, load Loader[T], t ticket) (T, error) {
	var zero T
	floor := floorOf(ctx)
	for attempt := 0; ; attempt++ {
		f, leader := c.flights.join(key, floor, c.applied())
		if leader {
			val, b, lsn, err := load(ctx)
			if err == nil {
				f.val = val
				if c.fill(ctx, shelf, key, lsn, b) {
					c.near.put(t, key, val, NearSize(key, len(b)))
				}
			}
			f.err = err
			c.flights.land(key, f)
		} else {
			c.metrics.sharedLoad()
			select {
			case <-f.done:
			case <-ctx.Done():
				return zero, ctx.Err()
			}
		}
		if f.err != nil {
			// The leader's request ended (its client left, its deadline
			// passed): that is not this reader's error; load again once.
			if !leader && attempt == 0 && ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
				continue
			}
			return zero, f.err
		}
		v, ok := f.val.(T)
		if !ok {
			return zero, errors.New("cache: a shared load of " + key + " returned another type")
		}
		return v, nil
	}
}

// applied is the position every shared load can count as applied before
// it starts: the watcher's, 0 without one.
func (c *Cache) applied() uint64 {
	if c.appliedFn == nil {
		return 0
	}
	return c.appliedFn()
}

// WithApplied tells the cache the applied position this process follows
// (the Watcher's), so that readers with a consistency token can share
// loads that started after their token was applied.
func (c *Cache) WithApplied(applied func() uint64) *Cache {
	c.appliedFn = applied
	return c
}
