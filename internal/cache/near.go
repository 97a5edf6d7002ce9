package cache

import (
	"container/list"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Near is the in-process layer in front of Redis: decoded values, by
// their Redis key, bounded in entries and bytes, least recently used out
// first. Only ReadThrough reads and fills it, and only the Watcher drops
// from it: it is kept exact by the CDC's announcements (watcher.go), a
// key being dropped before the position that changed it counts as
// applied in this process.
//
// The race it must win is a reader that read a document from Redis just
// before the CDC tombstoned it, and stores it here just after the
// announcement was processed. So a reader takes a ticket before it reads
// Redis, and the store is refused if the key's shard has forgotten
// anything (or been reset) since the ticket: whatever was evicted in
// between may be what the reader holds. Tickets never leave this package.
//
// Values are shared between readers and must not be modified.
type Near struct {
	shards  []nearShard
	seed    maphash.Seed
	ttl     time.Duration
	serving atomic.Bool
	metrics *nearMetrics
}

// nearShards spreads the lock; a power of two.
const nearShards = 64

type nearShard struct {
	mu         sync.Mutex
	version    uint64 // advanced by every forget of one of its keys and every reset
	entries    map[string]*list.Element
	lru        list.List // of *nearEntry, most recent first
	bytes      int64
	maxEntries int
	maxBytes   int64
}

type nearEntry struct {
	key     string
	value   any
	size    int64
	expires time.Time
}

// NearOptions size the near cache.
type NearOptions struct {
	Entries int           `env:"SWAPMEET_NEAR_CACHE_ENTRIES,off"` // at most this many values; 0 disables the near cache
	Bytes   int64         `env:"SWAPMEET_NEAR_CACHE_BYTES"`       // and at most this many bytes, as counted by NearSize
	TTL     time.Duration `env:"SWAPMEET_NEAR_CACHE_TTL"`         // a value is read from Redis again after this long
}

// DefaultNear is the default size of the near cache.
var DefaultNear = NearOptions{Entries: 10_000, Bytes: 64 << 20, TTL: time.Minute}

// NearSize is what a document whose encoded form is n bytes counts against
// the byte budget: the decoded form in memory is about twice its BSON (see
// TestNearSizeCoversTheHeap), plus the key and the bookkeeping.
func NearSize(key string, n int) int64 { return int64(2*n + len(key) + 160) }

// NewNear returns a near cache, or nil (a valid, always-missing cache) if
// o.Entries is 0. It serves nothing until a Watcher has subscribed.
func NewNear(o NearOptions) *Near {
	if o.Entries <= 0 || o.Bytes <= 0 {
		return nil
	}
	n := &Near{shards: make([]nearShard, nearShards), seed: maphash.MakeSeed(), ttl: o.TTL}
	for i := range n.shards {
		s := &n.shards[i]
		s.entries = map[string]*list.Element{}
		s.maxEntries = max(1, o.Entries/nearShards)
		s.maxBytes = max(1, o.Bytes/nearShards)
	}
	return n
}

// WithMetrics registers the near cache's series on reg; its lookups are
// counted on the cache's lookups series.
func (n *Near) WithMetrics(reg prometheus.Registerer, lookups *Metrics) *Near {
	if n != nil {
		n.metrics = newNearMetrics(reg, n, lookups)
	}
	return n
}

func (n *Near) shard(key string) *nearShard {
	return &n.shards[maphash.String(n.seed, key)&(nearShards-1)]
}

// ticket is taken before reading the layer below; put needs it.
type ticket struct {
	shard   *nearShard
	version uint64
}

// get returns the value under key, or a ticket to store it with once it
// has been read from below.
func (n *Near) get(key string) (any, bool, ticket) {
	if n == nil {
		return nil, false, ticket{}
	}
	s := n.shard(key)
	now := time.Now()
	s.mu.Lock()
	if !n.serving.Load() {
		s.mu.Unlock()
		n.metrics.lookup("bypass")
		return nil, false, ticket{}
	}
	if el, ok := s.entries[key]; ok {
		e := el.Value.(*nearEntry)
		if now.Before(e.expires) {
			s.lru.MoveToFront(el)
			s.mu.Unlock()
			n.metrics.lookup("hit")
			return e.value, true, ticket{}
		}
		s.remove(el)
	}
	t := ticket{shard: s, version: s.version}
	s.mu.Unlock()
	n.metrics.lookup("miss")
	return nil, false, t
}

// put stores a value read from below after t was taken, unless its shard
// forgot or reset anything since: then the value may be older than an
// announcement already processed. size is NearSize's.
func (n *Near) put(t ticket, key string, value any, size int64) bool {
	if n == nil || t.shard == nil {
		return false
	}
	s := t.shard
	s.mu.Lock()
	defer s.mu.Unlock()
	if !n.serving.Load() {
		return false
	}
	if s.version != t.version {
		n.metrics.refused()
		return false
	}
	if size > s.maxBytes {
		return false
	}
	if el, ok := s.entries[key]; ok {
		s.remove(el)
	}
	for len(s.entries) >= s.maxEntries || s.bytes+size > s.maxBytes {
		s.remove(s.lru.Back())
	}
	s.entries[key] = s.lru.PushFront(&nearEntry{key: key, value: value, size: size, expires: time.Now().Add(n.ttl)})
	s.bytes += size
	return true
}

func (s *nearShard) remove(el *list.Element) {
	e := s.lru.Remove(el).(*nearEntry)
	delete(s.entries, e.key)
	s.bytes -= e.size
}

// forget drops keys, and refuses the stores of readers that took their
// tickets before.
func (n *Near) forget(keys []string) {
	if n == nil {
		return
	}
	for _, k := range keys {
		s := n.shard(k)
		s.mu.Lock()
		s.version++
		if el, ok := s.entries[k]; ok {
			s.remove(el)
		}
		s.mu.Unlock()
	}
}

// reset drops everything and serves again.
func (n *Near) reset(reason string) {
	if n == nil {
		return
	}
	n.clear(true)
	n.metrics.reset(reason)
}

// suspend drops everything and serves nothing until the next reset.
func (n *Near) suspend() {
	if n == nil {
		return
	}
	n.clear(false)
}

func (n *Near) clear(serve bool) {
	if !serve {
		n.serving.Store(false) // before the shards: no store after their clearing
	}
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.Lock()
		s.version++
		clear(s.entries)
		s.lru.Init()
		s.bytes = 0
		s.mu.Unlock()
	}
	if serve {
		n.serving.Store(true) // after: tickets from before are refused
	}
}

// Len reports the documents held and their bytes.
func (n *Near) Len() (entries int, bytes int64) {
	if n == nil {
		return 0, 0
	}
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.Lock()
		entries += len(s.entries)
		bytes += s.bytes
		s.mu.Unlock()
	}
	return entries, bytes
}
