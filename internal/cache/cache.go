// Package cache owns the read path: the one way a query reads a
// projection. ReadThrough takes a key and a Loader and looks in three
// layers, in order: this process's near cache (Near), Redis (Cache), and
// the loader, which reads the read store; on the way back it fills Redis,
// then the near cache. A Loader is a plain func returning the value, its
// encoded form and the WAL position it reflects, so a new projection plugs
// in as a new loader (readstore.Load is the documents' one). Documents,
// search pages and the page epochs all go through ReadThrough; the near
// cache's tickets never leave this package.
//
// The package also owns what keeps those layers exact. In Redis, values
// and tombstones carry the WAL position of the document they describe, and
// every write is a compare-and-set on it, so a slow reader can never put
// an old document back after the CDC has evicted it (Cache.Evict). In
// process, the near cache's tickets, drops and resets follow the CDC's
// announcements (Publish on the CDC's side, Watcher on the API's), and
// the same Watcher lets a query wait for a consistency token.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/fault"
)

// Entry layout: 16 hex digits of LSN, one kind byte, then the payload.
const (
	kindValue     = 'V'
	kindTombstone = 'T'
	headerLen     = 17
)

// Cache is a namespaced, LSN-guarded cache-aside store.
//
// It keeps two kinds of data apart. Correctness data (documents with their
// tombstones, and the page epochs) is on rdb, which must never
// evict (maxmemory-policy noeviction). Search pages, which anyone can make
// more of by varying a query, are on pages (rdb unless WithPages is
// given), and are held to a budget here: at most PageKeys of them, each at
// most PageMaxBytes, so however many distinct searches arrive, pages
// never take more than PageKeys × PageMaxBytes.
type Cache struct {
	rdb    redis.UniversalClient
	pages  redis.UniversalClient
	prefix string
	// TTL bounds how long a value may live without being evicted: a safety net.
	TTL time.Duration
	// TombstoneTTL must exceed the longest time between a reader's read of
	// the store and its fill; fills that take longer are refused anyway
	// only while the tombstone lives.
	TombstoneTTL time.Duration
	// PageTTL bounds how long a cached search page lives.
	PageTTL time.Duration
	// ReadTimeout bounds each call on the read path, so a sick Redis
	// costs little before the query falls back to the read store.
	ReadTimeout time.Duration
	// PageMaxBytes is the largest page cached; larger ones are not.
	PageMaxBytes int
	// PageKeys is how many pages may be cached at once; past it, storing
	// a page drops the ones closest to expiry.
	PageKeys int

	breaker   *breaker
	metrics   *Metrics
	near      *Near // nil: none
	log       *slog.Logger
	flights   flights
	appliedFn func() uint64 // nil: no watcher; see WithApplied
}

// ErrSkipped means the breaker is open: Redis was not asked. It is a
// fault.ErrUnavailable.
var ErrSkipped = fault.Unavailable(errors.New("cache skipped: redis is failing"))

// New returns a cache whose keys all start with prefix.
func New(rdb redis.UniversalClient, prefix string) *Cache {
	return &Cache{
		rdb: rdb, pages: rdb, prefix: prefix,
		TTL: 10 * time.Minute, TombstoneTTL: time.Minute, PageTTL: time.Minute,
		ReadTimeout:  50 * time.Millisecond,
		PageMaxBytes: DefaultPageMaxBytes,
		PageKeys:     DefaultPageKeys,
		breaker:      newBreaker(3, time.Second),
		log:          slog.Default(),
	}
}

// Defaults of the page budget.
const (
	DefaultPageMaxBytes = 256 << 10
	DefaultPageKeys     = 1000
)

// WithPages puts the search pages on their own Redis (or database), away
// from the correctness data.
func (c *Cache) WithPages(pages redis.UniversalClient) *Cache {
	c.pages = pages
	return c
}

// WithNear puts a near cache in front of Redis on the read path. A
// Watcher must keep it exact (Watcher.WithNear).
func (c *Cache) WithNear(n *Near) *Cache {
	c.near = n
	return c
}

// WithLog sets where the read path reports the Redis failures it works
// around (at debug level: they cost only the fallback).
func (c *Cache) WithLog(log *slog.Logger) *Cache {
	c.log = log
	return c
}

// WithMetrics makes the cache count hits, misses and errors on m.
func (c *Cache) WithMetrics(m *Metrics) *Cache {
	c.metrics = m
	return c
}

// read runs one read-path call with the timeout and the breaker.
func (c *Cache) read(ctx context.Context, call func(ctx context.Context) error) error {
	now := time.Now()
	if !c.breaker.allow(now) {
		return ErrSkipped
	}
	ctx, cancel := context.WithTimeout(ctx, c.ReadTimeout)
	defer cancel()
	err := call(ctx)
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	c.breaker.done(err, time.Now())
	return classify(err)
}

// UserKey names the cached user document.
func (c *Cache) UserKey(id string) string { return c.prefix + "user:" + id }

// ListingKey names the cached listing document.
func (c *Cache) ListingKey(id string) string { return c.prefix + "listing:" + id }

// OrderKey names the cached order document.
func (c *Cache) OrderKey(id string) string { return c.prefix + "order:" + id }

// DocumentKey names the cached document of a collection, or "" for
// collections that are only listed, never fetched one by one.
func (c *Cache) DocumentKey(collection, id string) string {
	switch collection {
	case "users":
		return c.UserKey(id)
	case "listings":
		return c.ListingKey(id)
	case "orders":
		return c.OrderKey(id)
	}
	return ""
}

// PageEpochKey names a collection's page epoch, the counter that versions
// every cached result page of its queries: bumping it orphans them all at
// once. (A rebuild's collection copies are "generations"; this is not
// one.) Its hash
// tag is the collection's, as in PageKey, so on a Redis Cluster it lives
// in the same slot as the collection's pages.
func (c *Cache) PageEpochKey(collection string) string {
	return c.prefix + "epoch:{" + collection + "}"
}

// PageEpoch returns a collection's current page epoch, through the near
// cache: the CDC lists the epoch's key among what a batch evicted
// whenever it bumps it, so a query that waited for a token reads an epoch
// at least as new as the token's batch made it.
func (c *Cache) PageEpoch(ctx context.Context, collection string) (int64, error) {
	return ReadThrough(ctx, c, redisOnly, c.PageEpochKey(collection), func(ctx context.Context) (int64, []byte, uint64, error) {
		var b []byte
		err := c.read(ctx, func(ctx context.Context) error {
			var err error
			b, err = c.rdb.Get(ctx, c.PageEpochKey(collection)).Bytes()
			return err
		})
		if err != nil {
			return 0, nil, 0, err
		}
		n, err := decodeEpoch(b)
		return n, b, 0, err
	}, decodeEpoch)
}

func decodeEpoch(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, nil // never bumped
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// CurrentPageKey names a result page of a collection's query under the
// current page epoch, or is "" (do not cache) when the epoch cannot be
// read. Call it before the query runs: a page computed from data older
// than a bump then lands under the old epoch, which nobody reads.
func (c *Cache) CurrentPageKey(ctx context.Context, collection, digest string) string {
	epoch, err := c.PageEpoch(ctx, collection)
	if err != nil {
		return ""
	}
	return c.PageKey(collection, epoch, digest)
}

// PageKey names a cached result page. The epoch in the key is what
// invalidates it: when any listing changes, the CDC bumps the epoch
// and every older page is simply never asked for again (its TTL reaps it).
// The braces keep a collection's pages and their index in one Redis
// Cluster slot, as the budget script needs.
func (c *Cache) PageKey(collection string, epoch int64, digest string) string {
	return fmt.Sprintf("%spage:{%s}:%d:%s", c.prefix, collection, epoch, digest)
}

// pageIndexKey names the sorted set of a collection's cached pages, scored
// by when they expire: it is how the budget is counted.
func (c *Cache) pageIndexKey(key string) string {
	collection := key[strings.IndexByte(key, '{')+1 : strings.IndexByte(key, '}')]
	return c.prefix + "pages:{" + collection + "}"
}

// PageCacheable reports whether a page of n bytes is within the page
// budget: pages are cached at all, and this one is not too large.
func (c *Cache) PageCacheable(n int) bool { return c.PageKeys >= 1 && n <= c.PageMaxBytes }

// ErrPageTooLarge means a page was not cached because of PageMaxBytes.
var ErrPageTooLarge = errors.New("page larger than the cache's page limit")

// GetPage returns a cached result page.
func (c *Cache) GetPage(ctx context.Context, key string) ([]byte, bool, error) {
	var b []byte
	err := c.read(ctx, func(ctx context.Context) error {
		var err error
		b, err = c.pages.Get(ctx, key).Bytes()
		return err
	})
	switch {
	case err != nil:
		c.metrics.count("page", "error")
		return nil, false, err
	case b == nil:
		c.metrics.count("page", "miss")
		return nil, false, nil
	}
	c.metrics.count("page", "hit")
	return b, true, nil
}

// PutPage caches a result page computed at an epoch read before the
// query ran, so a page computed from data older than a bump is stored
// under the old epoch, where nobody looks.
func (c *Cache) PutPage(ctx context.Context, key string, payload []byte) error {
	if len(payload) > c.PageMaxBytes {
		return ErrPageTooLarge
	}
	if c.PageKeys < 1 {
		return nil // no budget, no pages
	}
	return c.read(ctx, func(ctx context.Context) error {
		return putPageScript.Run(ctx, c.pages, []string{c.pageIndexKey(key), key},
			payload, c.PageTTL.Milliseconds(), time.Now().UnixMilli(), c.PageKeys).Err()
	})
}

// putPageScript stores a page within the budget: it forgets expired pages,
// drops the ones closest to expiry while the index is full, then stores
// the page and indexes it by its expiry.
var putPageScript = redis.NewScript(`
local ttl, now, budget = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREM', KEYS[1], KEYS[2])
local over = redis.call('ZCARD', KEYS[1]) - budget + 1
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[1], over)
  for i = 1, #old, 2 do redis.call('DEL', old[i]) end
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[1], now + ttl, KEYS[2])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1`)

// BumpPageEpoch invalidates every cached result page of a collection, and
// adds the epoch's key to ev, the batch's announcement: near caches keep
// the epoch too, and must drop it before the batch counts as applied.
func (c *Cache) BumpPageEpoch(ctx context.Context, collection string, ev *Evicted) error {
	var check func() error
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		check = c.BumpPageEpochIn(ctx, p, collection, ev)
		return nil
	}); err != nil {
		return classify(err)
	}
	return check()
}

// BumpPageEpochIn queues BumpPageEpoch's increment in p. The check it
// returns, called once p has run, reports the increment's failure or adds
// the epoch's key to ev.
func (c *Cache) BumpPageEpochIn(ctx context.Context, p redis.Pipeliner, collection string, ev *Evicted) func() error {
	incr := p.Incr(ctx, c.PageEpochKey(collection))
	return func() error {
		if err := incr.Err(); err != nil {
			return classify(fmt.Errorf("bump the %s page epoch: %w", collection, err))
		}
		ev.Add(c.PageEpochKey(collection))
		return nil
	}
}

// Get returns the cached payload for key. A tombstone or an absent key is a miss.
func (c *Cache) Get(ctx context.Context, key string) (payload []byte, hit bool, err error) {
	var b []byte
	err = c.read(ctx, func(ctx context.Context) error {
		var err error
		b, err = c.rdb.Get(ctx, key).Bytes()
		return err
	})
	if err != nil {
		c.metrics.count("document", "error")
		return nil, false, err
	}
	if len(b) < headerLen || b[16] != kindValue {
		c.metrics.count("document", "miss")
		return nil, false, nil
	}
	c.metrics.count("document", "hit")
	return b[headerLen:], true, nil
}

// fillScript stores a value unless the key already holds a tombstone newer
// than it, or a value at least as new.
var fillScript = redis.NewScript(consistency.LuaCompareLSN + `
local cur = redis.call('GET', KEYS[1])
if cur then
  local c = cmplsn(cur, ARGV[1])
  if string.sub(cur, 17, 17) == 'T' then
    if c > 0 then return 0 end
  elseif c >= 0 then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. 'V' .. ARGV[2], 'PX', ARGV[3])
return 1`)

// Fill caches payload, the document as of lsn, unless the cache knows of
// something newer. It reports whether the value was stored.
func (c *Cache) Fill(ctx context.Context, key string, lsn uint64, payload []byte) (bool, error) {
	var n int
	err := c.read(ctx, func(ctx context.Context) error {
		var err error
		n, err = fillScript.Run(ctx, c.rdb, []string{key}, consistency.HexLSN(lsn), payload, c.TTL.Milliseconds()).Int()
		return err
	})
	return n == 1, err
}

// tombstoneScript replaces each KEYS[i] with a tombstone at ARGV[i+1]
// unless the key already holds something newer (a replay after a CDC
// restart). On a Redis Cluster the keys of one call must share a slot.
var tombstoneScript = redis.NewScript(consistency.LuaCompareLSN + `
local n = 0
for i, k in ipairs(KEYS) do
  local lsn = ARGV[i + 1]
  local cur = redis.call('GET', k)
  if not cur or cmplsn(cur, lsn) <= 0 then
    redis.call('SET', k, lsn .. 'T', 'PX', ARGV[1])
    n = n + 1
  end
end
return n`)

// Eviction is one key to tombstone at the LSN of its new document.
type Eviction struct {
	Key string
	LSN uint64
}

// Evict tombstones keys: the CDC calls it after the read store holds the
// documents they name. One server takes them all in one script call. On a
// Redis Cluster the keys lie in any slots, so each gets its own call, all
// in one pipeline, which the client splits by node. Tombstones only ever
// move a key forward, so the calls commute and their order does not matter.
func (c *Cache) Evict(ctx context.Context, evictions ...Eviction) error {
	return c.EvictAnd(ctx, evictions, nil)
}

// EvictAnd is Evict with more commands in the same pipeline, so that a
// batch's last tombstones, its page epoch and its change feed cost one
// round trip together. also queues them (it may be nil) and returns the
// check of their results, which EvictAnd calls once the pipeline has run.
func (c *Cache) EvictAnd(ctx context.Context, evictions []Eviction, also func(redis.Pipeliner) func() error) error {
	var groups [][]Eviction
	switch {
	case len(evictions) == 0:
	case IsCluster(c.rdb):
		groups = make([][]Eviction, len(evictions))
		for i := range evictions {
			groups[i] = evictions[i : i+1]
		}
	default:
		groups = [][]Eviction{evictions}
	}
	if len(groups) == 0 && also == nil {
		return nil
	}
	var check func() error
	groups, err := c.tombstone(ctx, groups, false, func(p redis.Pipeliner) {
		if also != nil {
			check = also(p)
		}
	})
	if check != nil {
		if cerr := check(); cerr != nil {
			return cerr
		}
	}
	if err != nil || len(groups) == 0 {
		return classify(err)
	}
	// A node that did not have the script cached (new, restarted or
	// flushed) gets its source this once; EVAL caches it there again.
	_, err = c.tombstone(ctx, groups, true, nil)
	return classify(err)
}

// tombstone runs the tombstone script once per group, in one pipeline, by
// digest or (eval) by source, after what also queues there (nil: nothing;
// its commands' results are its caller's to check). It returns the groups
// that failed only because their node did not know the digest.
func (c *Cache) tombstone(ctx context.Context, groups [][]Eviction, eval bool, also func(redis.Pipeliner)) ([][]Eviction, error) {
	ttl := c.TombstoneTTL.Milliseconds()
	cmds := make([]*redis.Cmd, len(groups))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if also != nil {
			also(p)
		}
		for i, g := range groups {
			keys := make([]string, len(g))
			args := make([]any, 1, len(g)+1)
			args[0] = ttl
			for j, e := range g {
				keys[j] = e.Key
				args = append(args, consistency.HexLSN(e.LSN))
			}
			if eval {
				cmds[i] = tombstoneScript.Eval(ctx, p, keys, args...)
			} else {
				cmds[i] = tombstoneScript.EvalSha(ctx, p, keys, args...)
			}
		}
		return nil
	})
	if err == nil {
		return nil, nil
	}
	var noscript [][]Eviction
	for i, cmd := range cmds {
		switch err := cmd.Err(); {
		case err == nil:
		case !eval && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")):
			noscript = append(noscript, groups[i])
		default:
			if len(groups[i]) == 1 {
				return nil, fmt.Errorf("evict %s: %w", groups[i][0].Key, err)
			}
			return nil, fmt.Errorf("evict %d keys: %w", len(groups[i]), err)
		}
	}
	if len(noscript) == 0 && also == nil { // the pipeline failed, not a command
		return nil, fmt.Errorf("evict: %w", err)
	}
	// Otherwise every tombstone that is not in noscript applied, and the
	// failure was also's commands', for its caller to check.
	return noscript, nil
}
