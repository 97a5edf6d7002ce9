package app

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// sessionCache remembers recent successful session lookups for a few
// seconds, saving a Postgres round trip on nearly every authenticated call.
// SignOut removes the entry in this process at once; other API processes
// may accept a revoked token until their entry expires (SessionCacheTTL).
// It holds at most sessionCacheSize entries, the least recently used going
// first.
type sessionCache struct {
	ttl     time.Duration
	entries *expirable.LRU[string, sessionEntry] // nil: off
}

// sessionCacheSize bounds the sessions one process remembers: about 10 MiB.
const sessionCacheSize = 100_000

type sessionEntry struct {
	user    uuid.UUID
	expires time.Time
}

func newSessionCache(ttl time.Duration) *sessionCache {
	c := &sessionCache{ttl: ttl}
	if ttl > 0 {
		c.entries = expirable.NewLRU[string, sessionEntry](sessionCacheSize, nil, ttl)
	}
	return c
}

func (c *sessionCache) get(hash string, now time.Time) (uuid.UUID, bool) {
	if c.entries == nil {
		return uuid.Nil, false
	}
	e, ok := c.entries.Get(hash)
	if !ok || now.After(e.expires) {
		return uuid.Nil, false
	}
	return e.user, true
}

func (c *sessionCache) put(hash string, user uuid.UUID, sessionExpires, now time.Time) {
	if c.entries == nil {
		return
	}
	exp := now.Add(c.ttl)
	if sessionExpires.Before(exp) {
		exp = sessionExpires
	}
	c.entries.Add(hash, sessionEntry{user: user, expires: exp})
}

func (c *sessionCache) drop(hash string) {
	if c.entries != nil {
		c.entries.Remove(hash)
	}
}

// purgeBatch is how many rows one purge statement deletes.
const purgeBatch = 1000

// purgeInBatches runs purge, one statement deleting at most purgeBatch
// rows, until one deletes fewer, so that no purge holds many locks or runs
// long; it returns how many rows went.
func purgeInBatches(what string, purge func() (int64, error)) (int64, error) {
	var total int64
	for {
		n, err := purge()
		total += n
		if err != nil {
			return total, fmt.Errorf("purge %s: %w", what, err)
		}
		if n < purgeBatch {
			return total, nil
		}
	}
}

// PurgeSessions deletes every expired session, a batch per statement so
// that no purge holds many locks or runs long, and returns how many; and
// the idempotency keys older than a day.
func (c *Commands) PurgeSessions(ctx context.Context) (int64, error) {
	if _, err := c.purgeIdempotencyKeys(ctx); err != nil {
		return 0, err
	}
	return purgeInBatches("sessions", func() (int64, error) {
		return c.deps.Store.PurgeExpiredSessions(ctx, purgeBatch)
	})
}

// RunSessionPurge purges expired sessions every interval until ctx ends.
func (c *Commands) RunSessionPurge(ctx context.Context, every time.Duration) {
	wait.Every(ctx, every, func(ctx context.Context) {
		n, err := c.PurgeSessions(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			c.deps.Log.Warn("session purge failed; retrying next time", "err", err)
		case n > 0:
			c.deps.Log.Info("expired sessions purged", "count", n)
		}
	})
}
