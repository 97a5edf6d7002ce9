package cache

import (
	"context"
	"errors"
)

// Loader reads a value from below Redis (the read store): the value, its
// encoded form as Redis keeps it, and the WAL position of the commit it
// reflects (0 where the shelf does not need one).
type Loader[T any] func(ctx context.Context) (value T, encoded []byte, lsn uint64, err error)

// Shelf is how Redis keeps a kind of value.
type Shelf int

const (
	// Documents are guarded by their WAL position: a fill is a
	// compare-and-set on it, and the CDC tombstones what it changes.
	Documents Shelf = iota
	// Pages are search result pages under a page epoch (CurrentPageKey),
	// held to the page budget.
	Pages
	// redisOnly values (the page epochs) live in Redis alone: the loader
	// reads Redis, and only the near cache keeps a copy.
	redisOnly
)

// ReadThrough returns the value under key from the first layer that has
// it: the near cache, Redis (decoding what it holds with decode), then
// load. On the way back it fills Redis, then the near cache. A key of ""
// is not cached at all: the value is loaded. Concurrent misses of one key
// share one load when they may (see flight.go).
//
// Redis failures cost only the fallback to load (and the breaker keeps a
// dead Redis from costing even that); they are logged at debug level.
// The near cache keeps a value only if no announcement dropped its key
// between the lookup and the fill (see Near). Values are shared between
// readers and must not be modified.
func ReadThrough[T any](ctx context.Context, c *Cache, shelf Shelf, key string, load Loader[T], decode func([]byte) (T, error)) (T, error) {
	if key == "" {
		v, _, _, err := load(ctx)
		return v, err
	}
	v, hit, t := c.near.get(key)
	if hit {
		if v, ok := v.(T); ok {
			return v, nil
		}
	}
	if shelf != redisOnly {
		if b, hit := c.lookup(ctx, shelf, key); hit {
			v, err := decode(b)
			if err == nil {
				c.near.put(t, key, v, NearSize(key, len(b)))
				return v, nil
			}
			c.log.Debug("cached value does not decode", "key", key, "err", err)
		}
	}
	return loadShared(ctx, c, shelf, key, load, t)
}

// lookup reads key from Redis's shelf.
func (c *Cache) lookup(ctx context.Context, shelf Shelf, key string) ([]byte, bool) {
	var b []byte
	var hit bool
	var err error
	if shelf == Pages {
		b, hit, err = c.GetPage(ctx, key)
	} else {
		b, hit, err = c.Get(ctx, key)
	}
	if err != nil && !errors.Is(err, ErrSkipped) {
		c.log.Debug("cache get failed", "key", key, "err", err)
	}
	return b, hit
}

// fill stores what load returned on Redis's shelf, and reports whether
// the near cache may keep it too: a page over the page budget is kept in
// neither.
func (c *Cache) fill(ctx context.Context, shelf Shelf, key string, lsn uint64, b []byte) bool {
	var err error
	switch shelf {
	case redisOnly:
		return true
	case Pages:
		if !c.PageCacheable(len(b)) {
			return false
		}
		err = c.PutPage(ctx, key, b)
	default:
		_, err = c.Fill(ctx, key, lsn, b)
	}
	if err != nil && !errors.Is(err, ErrSkipped) {
		c.log.Debug("cache fill failed", "key", key, "err", err)
	}
	return true
}
