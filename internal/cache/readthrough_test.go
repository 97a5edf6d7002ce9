package cache_test

import (
	"context"
	"strings"
	"testing"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/itest"
)

func decodeString(b []byte) (string, error) { return string(b), nil }

// store is a loader over a value that a test changes, counting its loads.
type store struct {
	value  string
	lsn    uint64
	loads  int
	during func() // runs inside the load, after the read
}

func (s *store) load(context.Context) (string, []byte, uint64, error) {
	s.loads++
	v := s.value
	if s.during != nil {
		s.during()
	}
	return v, []byte(v), s.lsn, nil
}

// TestReadThroughLayers: a document is looked for in the near cache, then
// Redis, then the loader, and the layers it missed are filled on the way
// back; a key of "" is never cached; a page over the budget is kept in
// neither layer; and a document whose key was dropped while it was being
// loaded is not kept in the near cache.
func TestReadThroughLayers(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	near := cache.NewNear(cache.DefaultNear)
	near.Reset("test") // serving, as after a watcher's subscription
	c := cache.New(e.Redis, e.RedisPrefix).WithNear(near)
	key := c.ListingKey("L1")
	s := &store{value: "version 1", lsn: 100}
	read := func(shelf cache.Shelf, key string) string {
		t.Helper()
		v, err := cache.ReadThrough(ctx, c, shelf, key, s.load, decodeString)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// A miss everywhere: loaded, then Redis and the near cache filled.
	if got := read(cache.Documents, key); got != "version 1" || s.loads != 1 {
		t.Fatalf("first read: %q after %d loads", got, s.loads)
	}
	if b, hit, err := c.Get(ctx, key); err != nil || !hit || string(b) != "version 1" {
		t.Fatalf("Redis holds %q %v %v after the fill", b, hit, err)
	}
	// The near cache answers first: Redis holds a newer version, unseen.
	if _, err := c.Fill(ctx, key, 200, []byte("version 2")); err != nil {
		t.Fatal(err)
	}
	if got := read(cache.Documents, key); got != "version 1" || s.loads != 1 {
		t.Fatalf("second read: %q after %d loads, want the near cache's version 1", got, s.loads)
	}
	// Once the key is dropped, Redis answers, and the loader is not asked.
	near.Forget([]string{key})
	if got := read(cache.Documents, key); got != "version 2" || s.loads != 1 {
		t.Fatalf("after a drop: %q after %d loads, want Redis's version 2", got, s.loads)
	}

	// Not cacheable: every read loads.
	s.loads = 0
	read(cache.Documents, "")
	read(cache.Documents, "")
	if s.loads != 2 {
		t.Fatalf("%d loads for two reads of an uncacheable value", s.loads)
	}

	// A page over the budget is kept nowhere.
	c.PageMaxBytes = 8
	page := c.PageKey("listings", 1, "big")
	s.loads, s.value = 0, strings.Repeat("p", 9)
	read(cache.Pages, page)
	read(cache.Pages, page)
	if s.loads != 2 {
		t.Fatalf("%d loads for two reads of a page over the budget", s.loads)
	}

	// The race the tickets settle: the key is dropped (the CDC changed the
	// document) while the reader loads; what it loaded is not kept.
	other := c.ListingKey("L2")
	s.loads, s.value, s.lsn = 0, "old", 300
	s.during = func() { near.Forget([]string{other}) }
	read(cache.Documents, other)
	s.during = nil
	if _, hit, _ := near.Get(other); hit {
		t.Fatal("the near cache kept a document whose key was dropped during its load")
	}
}
