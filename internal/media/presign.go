package media

import (
	"sync"
	"time"
)

// Presigning a GET is local but not free: each URL is a SigV4 signature
// (a chain of five HMAC-SHA256s) over a canonical request the client
// library builds with URL parsing and regular expressions. A listing
// with images presigns every image and thumbnail on every read, so the
// Bucket reuses a URL it signed for a short while instead.

// PresignReuseDivisor bounds the reuse of a presigned GET URL: it is
// handed out for at most GetExpiry/PresignReuseDivisor after it was
// signed, so every URL a caller receives is still valid for at least
// 90% of GetExpiry.
const PresignReuseDivisor = 10

// presignCacheSize bounds the URLs kept per generation: at most twice as
// many are held at once, a few MiB.
const presignCacheSize = 4096

// presigned is one signed URL.
type presigned struct {
	url     string
	expires time.Time
	signed  time.Time
}

// presignCache holds recently signed URLs by object key in two
// generations: a new one starts when the current one is a reuse window
// old or full, and the one before it is dropped. Every lookup still
// checks the entry's own age, so no URL is reused past the window.
type presignCache struct {
	reuse time.Duration
	max   int

	mu       sync.Mutex
	cur, old map[string]presigned
	started  time.Time // when cur began
}

func newPresignCache(reuse time.Duration, max int) *presignCache {
	return &presignCache{reuse: reuse, max: max, cur: make(map[string]presigned)}
}

// get returns the URL signed for key if it may still be handed out at now.
func (c *presignCache) get(key string, now time.Time) (presigned, bool) {
	if c.reuse <= 0 {
		return presigned{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.cur[key]
	if !ok {
		p, ok = c.old[key]
	}
	if !ok || now.Before(p.signed) || now.Sub(p.signed) >= c.reuse {
		return presigned{}, false
	}
	return p, true
}

// put keeps a URL that was signed at p.signed.
func (c *presignCache) put(key string, p presigned) {
	if c.reuse <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch age := p.signed.Sub(c.started); {
	case age >= 2*c.reuse:
		// Nothing in either generation can be reused any more.
		c.old, c.cur, c.started = nil, make(map[string]presigned), p.signed
	case age >= c.reuse || len(c.cur) >= c.max:
		c.old, c.cur, c.started = c.cur, make(map[string]presigned, len(c.cur)), p.signed
	}
	c.cur[key] = p
}

// len is how many URLs are held, for tests.
func (c *presignCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}
