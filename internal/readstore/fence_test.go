package readstore_test

import (
	"context"
	"fmt"
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

// TestABulkKeepsItsNewerDocuments: a page written in bulks, with stale
// documents in the middle of each bulk (a stored copy is newer), replaces
// every document that is not stale, inserts the new ones and leaves the
// newer stored ones as they are, without an error. FerretDB stops a bulk
// at its first refusal, so the documents after it must be sent again.
func TestABulkKeepsItsNewerDocuments(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	// Bulks of 8, one at a time: well inside FerretDB's pool.
	e.Reads.BulkSize, e.Reads.WriteConcurrency = 8, 1
	const n = 3*8 + 5
	ids := make([]string, n)
	docs := make([]any, n)
	var newer []string // stored at 50, then offered at 40
	for i := range n {
		ids[i] = fmt.Sprintf("L%03d", i)
		if i%5 == 2 {
			newer = append(newer, ids[i])
		}
	}
	if err := e.Reads.Put(ctx, readstore.Listings, newer, func() []any {
		d := make([]any, len(newer))
		for i, id := range newer {
			d[i] = readstore.Listing{ID: id, Title: "newer", LSN: 50}
		}
		return d
	}()); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		docs[i] = readstore.Listing{ID: id, Title: "page", LSN: 40}
	}
	if err := e.Reads.Put(ctx, readstore.Listings, ids, docs); err != nil {
		t.Fatalf("a page with stale documents in its bulks: %v", err)
	}
	for i, id := range ids {
		d, err := readstore.Find[readstore.Listing](ctx, e.Reads, readstore.Listings, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		want := readstore.Listing{ID: id, Title: "page", LSN: 40}
		if i%5 == 2 {
			want = readstore.Listing{ID: id, Title: "newer", LSN: 50}
		}
		if d.Title != want.Title || d.LSN != want.LSN {
			t.Fatalf("%s: stored %q at %d, want %q at %d", id, d.Title, d.LSN, want.Title, want.LSN)
		}
	}
}
