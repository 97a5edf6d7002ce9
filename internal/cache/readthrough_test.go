package cache_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// TestIdenticalMissesShareOneLoad: readers that miss the same key at once
// are answered by one load, except a reader whose consistency token is
// newer than the position the running load started at: it loads again
// (the running load may predate its write), and later readers share that.
func TestIdenticalMissesShareOneLoad(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	var applied atomic.Uint64
	applied.Store(100)
	c := cache.New(e.Redis, e.RedisPrefix).WithApplied(applied.Load)
	key := c.PageKey("listings", 1, "flood")
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) (string, []byte, uint64, error) {
		loads.Add(1)
		<-release
		return "page", []byte("page"), 0, nil
	}
	read := func(ctx context.Context, out chan<- error) {
		v, err := cache.ReadThrough(ctx, c, cache.Pages, key, load, decodeString)
		if err == nil && v != "page" {
			err = fmt.Errorf("read %q", v)
		}
		out <- err
	}
	done := make(chan error, 64)
	go read(ctx, done)
	itest.Eventually(t, 10*time.Second, "the first load to start", func() (bool, error) { return loads.Load() == 1, nil })
	const readers = 30
	for range readers {
		go read(ctx, done)
	}
	itest.Eventually(t, 10*time.Second, "the readers to join the load", func() (bool, error) { return c.FlightWaiters(key) == readers, nil })
	// A reader that waited for a write at 200: the load began at 100.
	applied.Store(200)
	go read(cache.WithFloor(ctx, 200), done)
	itest.Eventually(t, 10*time.Second, "the reader with a newer token to load again", func() (bool, error) { return loads.Load() == 2, nil })
	close(release)
	for range readers + 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := loads.Load(); n != 2 {
		t.Fatalf("%d loads for %d readers, want 2", n, readers+2)
	}
}

// TestJoinedLoadIsNotKeptPastAnAnnouncement: a reader that joins a load
// after an announcement dropped the key (the load had read the store
// before the change) must not put that value in the near cache: its own
// ticket postdates the drop. Only the loading reader's ticket, taken
// before its read, may decide.
func TestJoinedLoadIsNotKeptPastAnAnnouncement(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	near := cache.NewNear(cache.DefaultNear)
	near.Reset("test")
	c := cache.New(e.Redis, e.RedisPrefix).WithNear(near)
	key := c.ListingKey("L-joined")
	read, release := make(chan struct{}), make(chan struct{})
	load := func(context.Context) (string, []byte, uint64, error) {
		close(read) // the old document is read...
		<-release   // ...and the change is applied meanwhile
		return "old", []byte("old"), 100, nil
	}
	done := make(chan error, 2)
	go func() { _, err := cache.ReadThrough(ctx, c, cache.Documents, key, load, decodeString); done <- err }()
	<-read
	near.Forget([]string{key}) // the announcement of the change
	go func() { _, err := cache.ReadThrough(ctx, c, cache.Documents, key, load, decodeString); done <- err }()
	itest.Eventually(t, 10*time.Second, "the second reader to join the load", func() (bool, error) { return c.FlightWaiters(key) == 1, nil })
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if v, hit, _ := near.Get(key); hit {
		t.Fatalf("the near cache kept %v, loaded before an announcement that dropped it", v)
	}
}
