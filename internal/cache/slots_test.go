package cache_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// TestEvictAndFillAcrossSlots runs the cache's scripts on keys that a Redis
// Cluster spreads over many slots and nodes (on a single server it is the
// same test): one Evict of 200 keys, fills around the tombstones, a replay
// of older evictions, and an Evict after the nodes forgot the script.
func TestEvictAndFillAcrossSlots(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	c := cache.New(e.Redis, e.RedisPrefix)

	keys := make([]string, 200)
	for i := range keys {
		keys[i] = c.ListingKey(fmt.Sprintf("id-%03d", i))
	}
	if cl, ok := e.Redis.(*redis.ClusterClient); ok {
		slots := map[int64]bool{}
		for _, k := range keys {
			s, err := cl.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots[s] = true
		}
		if len(slots) < 100 {
			t.Fatalf("the keys are in %d slots only; the test needs them spread", len(slots))
		}
		t.Logf("Redis Cluster: the %d keys are in %d slots", len(keys), len(slots))
	}
	evictAll := func(lsn uint64) {
		t.Helper()
		evs := make([]cache.Eviction, len(keys))
		for i, k := range keys {
			evs[i] = cache.Eviction{Key: k, LSN: lsn}
		}
		if err := c.Evict(ctx, evs...); err != nil {
			t.Fatalf("evict %d keys at %d: %v", len(evs), lsn, err)
		}
	}
	fillAll := func(lsn uint64, want bool) {
		t.Helper()
		for _, k := range keys {
			stored, err := c.Fill(ctx, k, lsn, []byte(fmt.Sprint("v", lsn)))
			if err != nil {
				t.Fatalf("fill %s at %d: %v", k, lsn, err)
			}
			if stored != want {
				t.Fatalf("fill %s at %d stored = %v, want %v", k, lsn, stored, want)
			}
		}
	}
	hits := func() int {
		t.Helper()
		n := 0
		for _, k := range keys {
			_, hit, err := c.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if hit {
				n++
			}
		}
		return n
	}

	fillAll(10, true)
	if n := hits(); n != len(keys) {
		t.Fatalf("%d of %d filled keys hit", n, len(keys))
	}
	evictAll(20)
	if n := hits(); n != 0 {
		t.Fatalf("%d of %d evicted keys still hit", n, len(keys))
	}
	fillAll(19, false) // older than the tombstones
	evictAll(5)        // a replay of an older eviction keeps the newer tombstone
	fillAll(19, false)

	// A tombstone never replaces a newer value.
	if _, err := c.Fill(ctx, keys[0], 30, []byte("v30")); err != nil {
		t.Fatal(err)
	}
	if err := c.Evict(ctx, cache.Eviction{Key: keys[0], LSN: 25}, cache.Eviction{Key: keys[1], LSN: 25}); err != nil {
		t.Fatal(err)
	}
	if got, hit, err := c.Get(ctx, keys[0]); err != nil || !hit || string(got) != "v30" {
		t.Fatalf("after an older eviction, get = %q, %v, %v; want the newer value v30", got, hit, err)
	}
	if stored, err := c.Fill(ctx, keys[1], 24, []byte("v24")); err != nil || stored {
		t.Fatalf("fill older than the second tombstone stored = %v, %v", stored, err)
	}

	// Nodes that lost their scripts (a restart, SCRIPT FLUSH) still evict.
	if err := e.Redis.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	evictAll(40)
	if n := hits(); n != 0 {
		t.Fatalf("%d of %d keys hit after an eviction on flushed script caches", n, len(keys))
	}
	fillAll(39, false)
	fillAll(41, true)

	// The page epoch.
	before, err := c.PageEpoch(ctx, "listings")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.BumpPageEpoch(ctx, "listings", &cache.Evicted{}); err != nil {
		t.Fatal(err)
	}
	if after, err := c.PageEpoch(ctx, "listings"); err != nil || after != before+1 {
		t.Fatalf("page epoch %d after a bump from %d (%v)", after, before, err)
	}
}
