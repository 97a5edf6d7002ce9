package media

import (
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
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

// presignCacheSize bounds the URLs kept, a few MiB.
const presignCacheSize = 8192

// presigned is one signed URL.
type presigned struct {
	url     string
	expires time.Time
	signed  time.Time
}

// presignCache holds recently signed URLs by object key, each for at most
// the reuse window; the least recently used go first when it is full.
// Every lookup still checks the entry's own age against the caller's
// clock, so no URL is reused past the window.
type presignCache struct {
	reuse time.Duration
	urls  *expirable.LRU[string, presigned] // nil: reuse is off
}

func newPresignCache(reuse time.Duration, max int) *presignCache {
	c := &presignCache{reuse: reuse}
	if reuse > 0 {
		c.urls = expirable.NewLRU[string, presigned](max, nil, reuse)
	}
	return c
}

// get returns the URL signed for key if it may still be handed out at now.
func (c *presignCache) get(key string, now time.Time) (presigned, bool) {
	if c.urls == nil {
		return presigned{}, false
	}
	p, ok := c.urls.Get(key)
	if !ok || now.Before(p.signed) || now.Sub(p.signed) >= c.reuse {
		return presigned{}, false
	}
	return p, true
}

// put keeps a URL that was signed at p.signed.
func (c *presignCache) put(key string, p presigned) {
	if c.urls != nil {
		c.urls.Add(key, p)
	}
}

// len is how many URLs are held, for tests.
func (c *presignCache) len() int {
	if c.urls == nil {
		return 0
	}
	return c.urls.Len()
}
