package cache_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// TestNearSizeCoversTheHeap: what NearSize counts for a decoded listing is
// at least what the listing takes on the heap, for a small listing and a
// large one, so the byte budget bounds the near cache's real memory.
func TestNearSizeCoversTheHeap(t *testing.T) {
	for _, shape := range []struct {
		name              string
		description       int
		attributes, media int
	}{{"small", 40, 1, 0}, {"typical", 400, 4, 3}, {"large", 4000, 20, 8}} {
		t.Run(shape.name, func(t *testing.T) {
			l := readstore.Listing{
				ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Title: "A vintage camera with its lens, lot 17",
				Description: strings.Repeat("d", shape.description), Category: "cameras", Condition: "GOOD",
				Seller: readstore.UserSummary{ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", DisplayName: "Ada Lovelace", RatingAverage: 4.5, RatingCount: 12},
				Price:  readstore.Money{Currency: "EUR", Minor: 2500}, Attributes: map[string]string{},
				Status: "AVAILABLE", Version: 3, CreatedAt: time.Now(), UpdatedAt: time.Now(), LSN: 1 << 30,
			}
			for i := range shape.attributes {
				k, v := fmt.Sprintf("attribute%d", i), fmt.Sprintf("value%d", i)
				l.Attributes[k] = v
			}
			for i := range shape.media {
				l.Media = append(l.Media, readstore.Media{
					ID: fmt.Sprintf("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a%02d", i), ContentType: "image/jpeg", SizeBytes: 200_000,
					Width: 1600, Height: 1200, ObjectKey: fmt.Sprintf("listings/%s/%d.jpg", l.ID, i), ThumbnailKey: fmt.Sprintf("listings/%s/%d.thumb.jpg", l.ID, i),
				})
			}
			raw, err := bson.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			const n = 2000
			key := "swapmeet:listing:" + l.ID
			docs := make([]any, n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range docs {
				d, err := readstore.Decode[readstore.Listing](raw)
				if err != nil {
					t.Fatal(err)
				}
				docs[i] = d
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perDoc := int64(after.HeapAlloc-before.HeapAlloc) / n
			runtime.KeepAlive(docs)
			counted := cache.NearSize(key, len(raw))
			t.Logf("%s listing: %d B of BSON, %d B on the heap decoded, counted %d B", shape.name, len(raw), perDoc, counted)
			if counted < perDoc {
				t.Errorf("NearSize counts %d B for a listing that takes %d B on the heap", counted, perDoc)
			}
		})
	}
}

// TestNearBounds: the near cache holds at most its entries and bytes,
// expires documents after its TTL, and refuses a store whose ticket
// predates a Forget or a Reset of its key.
func TestNearBounds(t *testing.T) {
	// One entry a shard: 64 shards.
	n := cache.NewNear(cache.NearOptions{Entries: 64, Bytes: 64 << 10, TTL: time.Hour})
	n.Reset("test")
	put := func(key string, size int64) bool {
		_, _, ticket := n.Get(key)
		return n.Put(ticket, key, key, size)
	}
	for i := range 1000 {
		put(fmt.Sprintf("k%d", i), 100)
	}
	if e, b := n.Len(); e > 64 || b > 64<<10 {
		t.Fatalf("holds %d entries, %d bytes; bounds 64, %d", e, b, 64<<10)
	}
	if put("huge", 2<<10) { // over a shard's share of the bytes
		t.Fatal("kept a document larger than a shard's byte budget")
	}

	// A ticket from before a Forget of the key, or a Reset, is refused.
	_, _, ticket := n.Get("a")
	n.Forget([]string{"a"})
	if n.Put(ticket, "a", "old", 1) {
		t.Fatal("kept a document read before its key was forgotten")
	}
	_, _, ticket = n.Get("a")
	n.Reset("test")
	if n.Put(ticket, "a", "old", 1) {
		t.Fatal("kept a document read before a reset")
	}
	// Suspended, it neither serves nor keeps.
	put("b", 1)
	n.Suspend()
	if _, hit, _ := n.Get("b"); hit {
		t.Fatal("a suspended near cache served")
	}
	if put("b", 1) {
		t.Fatal("a suspended near cache kept a document")
	}

	// Expiry.
	short := cache.NewNear(cache.NearOptions{Entries: 10, Bytes: 1 << 20, TTL: time.Millisecond})
	short.Reset("test")
	_, _, ticket = short.Get("c")
	if !short.Put(ticket, "c", "c", 1) {
		t.Fatal("refused a document with a fresh ticket")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, hit, _ := short.Get("c"); !hit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a document outlived its TTL by 5 s")
		}
		runtime.Gosched()
	}
	var none *cache.Near // a disabled near cache
	if _, hit, _ := none.Get("c"); hit || none.Put(cache.Ticket{}, "c", "c", 1) {
		t.Fatal("a nil near cache served or kept")
	}
}
