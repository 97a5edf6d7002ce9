package feed_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/feed"
	"github.com/swapmeet/swapmeet/internal/itest"
)

var ctx = context.Background()

func changes(n int, pos uint64) []feed.Change {
	out := make([]feed.Change, n)
	for i := range out {
		out[i] = feed.Change{ID: uuid.New(), Buyer: uuid.New(), Seller: uuid.New(), Position: pos}
	}
	return out
}

// TestAppendIsIdempotentAcrossReplays: a batch applied again after a crash
// (the same end, or an end within what was fed) adds nothing; a later
// batch is appended; chunks and parties survive the round trip.
func TestAppendIsIdempotentAcrossReplays(t *testing.T) {
	e := itest.New(t)
	keys := feed.KeysFor(e.RedisPrefix, feed.Orders)
	first := changes(feed.MaxChunk+3, 100)
	for range 2 {
		if err := feed.Append(ctx, e.Redis, feed.Orders, keys, 90, feed.Entries(100, first, false)); err != nil {
			t.Fatal(err)
		}
	}
	// A replay whose batch ended earlier is within what was fed.
	if err := feed.Append(ctx, e.Redis, feed.Orders, keys, 90, feed.Entries(95, changes(2, 95), false)); err != nil {
		t.Fatal(err)
	}
	later := changes(1, 150)
	if err := feed.Append(ctx, e.Redis, feed.Orders, keys, 100, feed.Entries(150, later, false)); err != nil {
		t.Fatal(err)
	}
	got, err := feed.Range(ctx, e.Redis, feed.Orders, keys, feed.After(0), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Position != 100 || got[1].Chunk != 1 || got[2].Position != 150 {
		t.Fatalf("entries %+v", got)
	}
	var all []feed.Change
	for _, e := range got[:2] {
		all = append(all, e.Changes...)
	}
	if len(all) != len(first) || all[7] != first[7] || got[2].Changes[0] != later[0] {
		t.Fatalf("changes did not survive the round trip")
	}
	if floor, ok, err := feed.Floor(ctx, e.Redis, keys); err != nil || !ok || floor != 90 {
		t.Fatalf("floor %d %v %v, want 90 from the first append", floor, ok, err)
	}
	if after, err := feed.Range(ctx, e.Redis, feed.Orders, keys, feed.After(100), 100); err != nil || len(after) != 1 {
		t.Fatalf("after 100: %+v %v", after, err)
	}
}

// TestTrimRaisesTheFloor: trimming drops what is at or before the cut and
// never lowers the floor.
func TestTrimRaisesTheFloor(t *testing.T) {
	e := itest.New(t)
	keys := feed.KeysFor(e.RedisPrefix, feed.Listings)
	for _, end := range []uint64{10, 20, 30} {
		if err := feed.Append(ctx, e.Redis, feed.Listings, keys, 5, feed.Entries(end, changes(1, end), false)); err != nil {
			t.Fatal(err)
		}
	}
	if err := feed.Append(ctx, e.Redis, feed.Listings, keys, 30, feed.Entries(40, nil, true)); err != nil {
		t.Fatal(err)
	}
	if err := feed.Trim(ctx, e.Redis, keys, 20); err != nil {
		t.Fatal(err)
	}
	if err := feed.Trim(ctx, e.Redis, keys, 10); err != nil { // late, lower: no effect on the floor
		t.Fatal(err)
	}
	got, err := feed.Range(ctx, e.Redis, feed.Listings, keys, feed.After(0), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Position != 30 || !got[1].All {
		t.Fatalf("entries after trimming at 20: %+v", got)
	}
	if floor, _, _ := feed.Floor(ctx, e.Redis, keys); floor != 20 {
		t.Fatalf("floor %d, want 20", floor)
	}
}

// TestEntryTraceParent: an entry keeps the traceparent it is written
// with, an "all" entry too, and an entry written without one (as before
// the field existed) reads as having none.
func TestEntryTraceParent(t *testing.T) {
	e := itest.New(t)
	keys := feed.KeysFor(e.RedisPrefix, feed.Listings)
	const tp = "00-5a170102030405060708090a0b0c0d0e-ca11e70102030405-01"
	// As an older CDC wrote them: no trace field.
	if err := e.Redis.XAdd(ctx, &redis.XAddArgs{Stream: keys.Log, ID: "10-0", Values: []any{"c", ""}}).Err(); err != nil {
		t.Fatal(err)
	}
	traced := feed.Entries(20, changes(2, 20), false)
	traced[0].TraceParent = tp
	all := feed.Entries(30, nil, true)
	all[0].TraceParent = tp
	for _, entries := range [][]feed.Entry{traced, feed.Entries(25, changes(1, 25), false), all} {
		if err := feed.Append(ctx, e.Redis, feed.Listings, keys, 5, entries); err != nil {
			t.Fatal(err)
		}
	}
	got, err := feed.Range(ctx, e.Redis, feed.Listings, keys, feed.After(0), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", tp, "", tp}
	if len(got) != len(want) {
		t.Fatalf("entries %+v", got)
	}
	for i, g := range got {
		if g.TraceParent != want[i] {
			t.Errorf("entry %s: traceparent %q, want %q", g.ID(), g.TraceParent, want[i])
		}
	}
	if len(got[1].Changes) != 2 || !got[3].All {
		t.Fatalf("the trace field changed the entries: %+v", got)
	}
}
