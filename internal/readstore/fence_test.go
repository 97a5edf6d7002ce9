package readstore_test

import (
	"context"
	"testing"

	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// TestPutNeverGoesBack: a document replaces the stored one only if that
// one is not newer, so a writer that finishes late (a paused old CDC)
// cannot undo newer work; an equal stamp (a replay) still replaces.
func TestPutNeverGoesBack(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	put := func(lsn int64, title string) {
		t.Helper()
		doc := readstore.Listing{ID: "L1", Title: title, LSN: lsn}
		if err := e.Reads.Put(ctx, readstore.Listings, []string{doc.ID}, []any{doc}); err != nil {
			t.Fatalf("put at %d: %v", lsn, err)
		}
	}
	stored := func() readstore.Listing {
		t.Helper()
		d, err := readstore.Find[readstore.Listing](ctx, e.Reads, readstore.Listings, "L1")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	put(20, "at 20")
	put(10, "stale, at 10")
	if d := stored(); d.LSN != 20 || d.Title != "at 20" {
		t.Fatalf("an older document replaced a newer one: %+v", d)
	}
	put(20, "replayed at 20")
	if d := stored(); d.Title != "replayed at 20" {
		t.Fatalf("a replay at the same position was refused: %+v", d)
	}
	put(30, "at 30")
	if d := stored(); d.LSN != 30 || d.Title != "at 30" {
		t.Fatalf("a newer document was refused: %+v", d)
	}
}
