package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// sessionCache remembers recent successful session lookups for a few
// seconds, saving a Postgres round trip on nearly every authenticated call.
// SignOut removes the entry in this process at once; other API processes
// may accept a revoked token until their entry expires (SessionCacheTTL).
type sessionCache struct {
	ttl time.Duration

	mu      sync.Mutex
	entries map[string]sessionEntry
	sweep   time.Time
}

type sessionEntry struct {
	user    uuid.UUID
	expires time.Time
}

func newSessionCache(ttl time.Duration) *sessionCache {
	return &sessionCache{ttl: ttl, entries: map[string]sessionEntry{}}
}

func (c *sessionCache) get(hash string, now time.Time) (uuid.UUID, bool) {
	if c.ttl <= 0 {
		return uuid.Nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || now.After(e.expires) {
		return uuid.Nil, false
	}
	return e.user, true
}

func (c *sessionCache) put(hash string, user uuid.UUID, sessionExpires, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.After(c.sweep) { // drop expired entries now and then: bounded memory
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
		c.sweep = now.Add(c.ttl)
	}
	exp := now.Add(c.ttl)
	if sessionExpires.Before(exp) {
		exp = sessionExpires
	}
	c.entries[hash] = sessionEntry{user: user, expires: exp}
}

func (c *sessionCache) drop(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, hash)
}

// purgeBatch is how many expired sessions one purge transaction deletes.
const purgeBatch = 1000

// PurgeSessions deletes every expired session, a batch per statement so
// that no purge holds many locks or runs long, and returns how many.
func (c *Commands) PurgeSessions(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, err := c.deps.Store.PurgeExpiredSessions(ctx, purgeBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("purge sessions: %w", err)
		}
		if n < purgeBatch {
			return total, nil
		}
	}
}

// RunSessionPurge purges expired sessions every interval until ctx ends.
func (c *Commands) RunSessionPurge(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := c.PurgeSessions(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			c.deps.Log.Warn("session purge failed; retrying next time", "err", err)
		case n > 0:
			c.deps.Log.Info("expired sessions purged", "count", n)
		}
	}
}
