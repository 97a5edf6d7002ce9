package cache_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// nearFixture is one API process's read path, made of its real parts on
// the real Redis: the Redis cache, a near cache, and the watcher that
// keeps the near cache exact. cdc plays the CDC's part with the calls the
// projector makes: tombstone, then announce.
type nearFixture struct {
	e     *itest.Env
	ctx   context.Context
	keys  cache.AppliedKeys
	redis *cache.Cache
	near  *cache.Near
	w     *cache.Watcher
	name  string // the watcher's Redis connections are named so
}

func newNearFixture(t *testing.T, onDrop func(reason string, keys []string)) *nearFixture {
	e := itest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	f := &nearFixture{e: e, ctx: ctx, keys: cache.AppliedKeysFor(e.RedisPrefix), redis: e.Cache()}
	f.near = cache.NewNear(cache.DefaultNear)
	f.name = "near-test-" + e.RedisPrefix[:len(e.RedisPrefix)-1]
	f.w = cache.NewWatcher(namedClient(t, e.Redis, f.name), f.keys, e.Log)
	if onDrop != nil {
		f.w.OnDrop(onDrop)
	}
	f.w.WithNear(f.near)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.w.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	return f
}

// cdc tombstones key at lsn in Redis, then announces lsn with the key.
func (f *nearFixture) cdc(t *testing.T, key string, lsn uint64) {
	t.Helper()
	if err := f.redis.Evict(f.ctx, cache.Eviction{Key: key, LSN: lsn}); err != nil {
		t.Fatal(err)
	}
	if err := cache.Publish(f.ctx, f.e.Redis, f.keys, lsn, cache.Evicted{Keys: []string{key}}); err != nil {
		t.Fatal(err)
	}
}

func (f *nearFixture) waitApplied(t *testing.T, lsn uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	if err := f.w.Wait(ctx, lsn); err != nil {
		t.Fatal(err)
	}
}

// read is a reader's whole path as the app takes it: the near cache, then
// Redis, then keeping what Redis gave. hold, if set, runs between the
// Redis read and the keeping.
func (f *nearFixture) read(t *testing.T, key string, hold func()) (string, bool) {
	t.Helper()
	if v, hit, _ := f.near.Get(key); hit {
		return v.(string), true
	}
	_, _, ticket := f.near.Get(key)
	b, hit, err := f.redis.Get(f.ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !hit {
		return "", false
	}
	if hold != nil {
		hold()
	}
	f.near.Put(ticket, key, string(b), cache.NearSize(key, len(b)))
	return string(b), true
}

// serving waits until the watcher has subscribed and the near cache keeps
// what it is given.
func (f *nearFixture) serving(t *testing.T) {
	t.Helper()
	probe := f.e.RedisPrefix + "probe"
	itest.Eventually(t, 10*time.Second, "the near cache to serve", func() (bool, error) {
		_, _, ticket := f.near.Get(probe)
		return f.near.Put(ticket, probe, "x", 1), nil
	})
	f.near.Forget([]string{probe})
}

// TestNearCacheRaceStepByStep: a reader has read a listing's old document
// from Redis and is held there; meanwhile the CDC tombstones the key and
// announces it, and the watcher processes the announcement. When the
// reader goes on, the near cache refuses the old document: it is never
// served after the announcement, and a read with the write's token finds
// the new one.
func TestNearCacheRaceStepByStep(t *testing.T) {
	f := newNearFixture(t, nil)
	f.serving(t)
	key := f.redis.ListingKey("race")

	// Step 1: Redis holds version 1, as of position 100.
	if _, err := f.redis.Fill(f.ctx, key, 100, []byte("version 1")); err != nil {
		t.Fatal(err)
	}
	var afterAnnouncement bool
	got, _ := f.read(t, key, func() {
		// Step 2: the reader holds version 1. The CDC writes version 2
		// at 200: tombstone, announce.
		f.cdc(t, key, 200)
		// Step 3: this process has processed the announcement.
		f.waitApplied(t, 200)
		afterAnnouncement = true
	})
	if got != "version 1" || !afterAnnouncement {
		t.Fatalf("the held reader read %q (after the announcement: %v)", got, afterAnnouncement)
	}
	// Step 4: the reader's store was refused; the near cache has nothing.
	if v, hit, _ := f.near.Get(key); hit {
		t.Fatalf("after the announcement, the near cache serves %q", v)
	}
	// Step 5: the CDC's fill of version 2, and a reader with the token.
	if _, err := f.redis.Fill(f.ctx, key, 200, []byte("version 2")); err != nil {
		t.Fatal(err)
	}
	f.waitApplied(t, 200)
	if got, _ := f.read(t, key, nil); got != "version 2" {
		t.Fatalf("with the token of version 2: read %q", got)
	}
	if v, hit, _ := f.near.Get(key); !hit || v != "version 2" {
		t.Fatalf("the near cache holds %v %v, want version 2", v, hit)
	}

	// The same race, but the announcement comes first: a reader whose
	// ticket is taken after the announcement reads Redis after the
	// tombstone, so it never sees version 2 there.
	f.cdc(t, key, 300)
	f.waitApplied(t, 300)
	if got, hit := f.read(t, key, nil); hit {
		t.Fatalf("after the tombstone of 300, Redis gave %q", got)
	}
}

// recorder notes the watcher's drops, with the applied position at each.
type recorder struct {
	w      *cache.Watcher
	mu     sync.Mutex
	forgot map[string]uint64 // key → applied position when forgotten
	resets []string
	susp   int
}

func (r *recorder) dropped(reason string, keys []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch reason {
	case "":
		for _, k := range keys {
			r.forgot[k] = r.w.Applied()
		}
	case "suspended":
		r.susp++
	default:
		r.resets = append(r.resets, reason)
	}
}

// newRecordedFixture is a fixture whose watcher's drops a recorder notes,
// once it has subscribed.
func newRecordedFixture(t *testing.T) (*nearFixture, *recorder) {
	rec := &recorder{forgot: map[string]uint64{}}
	f := newNearFixture(t, rec.dropped)
	rec.w = f.w
	itest.Eventually(t, 10*time.Second, "the watcher to subscribe", func() (bool, error) {
		_, resets, _ := rec.state()
		return len(resets) > 0, nil
	})
	return f, rec
}

func (r *recorder) state() (map[string]uint64, []string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	forgot := make(map[string]uint64, len(r.forgot))
	for k, v := range r.forgot {
		forgot[k] = v
	}
	return forgot, append([]string(nil), r.resets...), r.susp
}

// TestWatcherForgetsBeforeItAdvances: each announced key is forgotten
// while the applied position is still below the announcement's; a batch
// over the bound resets the whole cache; a skipped sequence number (an
// announcement this process never got) resets it too.
func TestWatcherForgetsBeforeItAdvances(t *testing.T) {
	f, rec := newRecordedFixture(t)

	for i := range 20 {
		lsn := uint64(1000 + 10*i)
		key := fmt.Sprintf("key-%d", i)
		if err := cache.Publish(f.ctx, f.e.Redis, f.keys, lsn, cache.Evicted{Keys: []string{key}}); err != nil {
			t.Fatal(err)
		}
	}
	f.waitApplied(t, 1190)
	forgot, resets, _ := rec.state()
	for i := range 20 {
		key := fmt.Sprintf("key-%d", i)
		at, ok := forgot[key]
		if !ok {
			t.Fatalf("%s was never forgotten", key)
		}
		if at >= uint64(1000+10*i) {
			t.Errorf("%s forgotten when the applied position was already %d, its own", key, at)
		}
	}
	if len(resets) != 1 || resets[0] != cache.ResetSubscribed {
		t.Errorf("resets %v, want only the subscription's", resets)
	}

	// Over the bound: one reset, no list.
	var bulk cache.Evicted
	for i := range cache.MaxAnnouncedKeys + 1 {
		bulk.Add(fmt.Sprintf("bulk-%d", i))
	}
	if !bulk.All || bulk.Keys != nil {
		t.Fatalf("%d keys did not turn into a whole-cache drop", cache.MaxAnnouncedKeys+1)
	}
	if err := cache.Publish(f.ctx, f.e.Redis, f.keys, 2000, bulk); err != nil {
		t.Fatal(err)
	}
	f.waitApplied(t, 2000)
	if _, resets, _ = rec.state(); resets[len(resets)-1] != cache.ResetBulk {
		t.Errorf("after a bulk batch: resets %v", resets)
	}

	// A gap: announcement 3 of the sequence never reached this process
	// (published straight to the channel with the number after it).
	seq, err := f.e.Redis.Get(f.ctx, f.keys.Sequence).Uint64()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.e.Redis.Publish(f.ctx, f.keys.Channel, fmt.Sprintf("%s\n%d\nkey-gap", consistency.HexLSN(3000), seq+2)).Err(); err != nil {
		t.Fatal(err)
	}
	f.waitApplied(t, 3000)
	if _, resets, _ = rec.state(); resets[len(resets)-1] != cache.ResetGap {
		t.Errorf("after a skipped sequence number: resets %v", resets)
	}
}

// TestWatcherCatchesUpOnALostAnnouncement: the position moves in Redis
// but its announcement never comes (as when a message is lost in a
// failover). A request waiting for it still gets it, and only after the
// near cache was reset.
func TestWatcherCatchesUpOnALostAnnouncement(t *testing.T) {
	f, rec := newRecordedFixture(t)
	// What the publish script does, without the PUBLISH.
	if err := f.e.Redis.Set(f.ctx, f.keys.Applied, consistency.HexLSN(5000), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.e.Redis.Incr(f.ctx, f.keys.Sequence).Err(); err != nil {
		t.Fatal(err)
	}
	f.waitApplied(t, 5000)
	if _, resets, _ := rec.state(); resets[len(resets)-1] != cache.ResetLagging {
		t.Errorf("caught up with resets %v, want the last one %q", resets, cache.ResetLagging)
	}
}

// TestDroppedSubscriptionClearsTheNearCache: when Redis drops the
// watcher's subscription, the near cache is emptied and serves nothing
// until the watcher has subscribed again; then it serves again.
func TestDroppedSubscriptionClearsTheNearCache(t *testing.T) {
	f := newNearFixture(t, nil)
	f.serving(t)
	key := f.redis.ListingKey("dropped")
	if _, err := f.redis.Fill(f.ctx, key, 100, []byte("version 1")); err != nil {
		t.Fatal(err)
	}
	f.read(t, key, nil)
	if _, hit, _ := f.near.Get(key); !hit {
		t.Fatal("the near cache did not keep the document")
	}

	// The CDC announces other changes, as it does all the time.
	f.cdc(t, f.redis.ListingKey("another"), 200)
	f.waitApplied(t, 200)

	killed := killSubscriptions(t, f.ctx, f.e.Redis, f.name)
	if killed == 0 {
		t.Fatal("no pub/sub connection to kill")
	}
	// Emptied as the watcher notices (suspended, then reset when it has
	// subscribed again), and serving again after that.
	itest.Eventually(t, 10*time.Second, "the near cache to be emptied", func() (bool, error) {
		n, _ := f.near.Len()
		return n == 0, nil
	})
	f.serving(t)
	f.read(t, key, nil)
	if _, hit, _ := f.near.Get(key); !hit {
		t.Fatal("after subscribing again, the near cache does not serve")
	}
}

// namedClient is a client of the same Redis as rdb whose connections are
// named name, so that a test can find them.
func namedClient(t *testing.T, rdb redis.UniversalClient, name string) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	switch r := rdb.(type) {
	case *redis.ClusterClient:
		o := *r.Options()
		o.ClientName = name
		c = redis.NewClusterClient(&o)
	case *redis.Client:
		o := *r.Options()
		o.ClientName = name
		c = redis.NewClient(&o)
	default:
		t.Fatalf("a Redis client of type %T", rdb)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// killSubscriptions closes the pub/sub connections named name, on every
// node of a cluster, as a Redis restart or an output-buffer overrun does.
func killSubscriptions(t *testing.T, ctx context.Context, rdb redis.UniversalClient, name string) int {
	t.Helper()
	var total atomic.Int64
	kill := func(ctx context.Context, c *redis.Client) error {
		list, err := c.ClientList(ctx).Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(list, "\n") {
			f := strings.Fields(line)
			if !slices.Contains(f, "name="+name) || slices.Contains(f, "sub=0") {
				continue
			}
			for _, kv := range f {
				if id, ok := strings.CutPrefix(kv, "id="); ok {
					if err := c.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
						return err
					}
					total.Add(1)
				}
			}
		}
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachShard(ctx, kill)
	case *redis.Client:
		err = kill(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return int(total.Load())
}
