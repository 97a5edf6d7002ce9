package projection

import (
	"runtime"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"

	"github.com/swapmeet/swapmeet/cdc/wal"
)

func tuple(values ...string) *pglogrepl.TupleData {
	t := &pglogrepl.TupleData{}
	for _, v := range values {
		t.Columns = append(t.Columns, &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeText, Data: []byte(v)})
	}
	return t
}

// The tables' columns, as their Relation messages give them.
var (
	usersCols    = []string{"id", "display_name", "bio"}
	listingsCols = []string{"id", "seller_id", "status", "description"}
)

func TestBioEditFansOutToNothing(t *testing.T) {
	user := uuid.NewString()
	b := newTouched(100)
	b.Add(wal.NewChange("users", usersCols, wal.OpUpdate,
		tuple(user, "Ada", "new bio"), tuple(user, "Ada", "old bio")))
	b.Commit(wal.Commit{Xid: 1, EndLSN: 10})
	if len(b.summaries) != 0 {
		t.Fatalf("a bio edit marked %d summaries for fan-out", len(b.summaries))
	}
	if len(b.docs[cUsers]) != 1 {
		t.Fatalf("the profile itself was not marked: %v", b.docs[cUsers])
	}
	b.Add(wal.NewChange("users", usersCols, wal.OpUpdate,
		tuple(user, "Ada L.", "new bio"), tuple(user, "Ada", "new bio")))
	b.Commit(wal.Commit{Xid: 2, EndLSN: 20})
	if got := b.summary(uuid.MustParse(user)); got != 20 {
		t.Fatalf("a rename fans out at %d, want the rename's end 20", got)
	}
}

func TestPriceEditLeavesTheSellerAlone(t *testing.T) {
	listing, seller := uuid.NewString(), uuid.NewString()
	b := newTouched(100)
	b.Add(wal.NewChange("listings", listingsCols, wal.OpUpdate,
		tuple(listing, seller, "AVAILABLE", "b"), tuple(listing, seller, "AVAILABLE", "a")))
	b.Add(wal.NewChange("listings", listingsCols, wal.OpUpdate,
		tuple(listing, seller, "SOLD", "b"), tuple(listing, seller, "AVAILABLE", "b")))
	b.Commit(wal.Commit{Xid: 1, EndLSN: 10})
	if b.Size() != 2 || len(b.docs[cListings]) != 1 || len(b.docs[cUsers]) != 1 {
		t.Fatalf("want the listing once and its seller once; size %d, listings %d, users %d",
			b.Size(), len(b.docs[cListings]), len(b.docs[cUsers]))
	}
}

// TestSetsSpillAtTheirBound: past the bound a collection is marked for a
// full pass and its set is released, so a transaction of any size holds
// at most the bound.
func TestSetsSpillAtTheirBound(t *testing.T) {
	const bound = 1000
	seller := uuid.NewString()
	b := newTouched(bound)
	for range 3 * bound {
		id := uuid.NewString()
		b.Add(wal.NewChange("listings", listingsCols, wal.OpInsert,
			tuple(id, seller, "AVAILABLE", "x"), nil))
	}
	b.Commit(wal.Commit{Xid: 7, EndLSN: 99})
	if !b.full[cListings] || b.docs[cListings] != nil {
		t.Fatalf("listings did not spill: full=%v, held %d", b.full[cListings], len(b.docs[cListings]))
	}
	if b.full[cUsers] || len(b.docs[cUsers]) != 1 {
		t.Fatalf("the seller's profile should stay a set of one: full=%v, held %d", b.full[cUsers], len(b.docs[cUsers]))
	}
	if got := b.doc(cListings, uuid.New()); got != 99 {
		t.Fatalf("a spilled collection stamps %d, want the batch's end 99", got)
	}
	if b.Size() < bound {
		t.Fatalf("size %d: a spilled set must still close the batch", b.Size())
	}
}

func TestTruncateMeansFullPass(t *testing.T) {
	b := newTouched(100)
	b.Add(wal.NewChange("orders", nil, wal.OpTruncate, nil, nil))
	b.Commit(wal.Commit{Xid: 1, EndLSN: 5})
	for i, full := range b.full {
		if !full {
			t.Fatalf("collection %d not marked for a full pass after TRUNCATE", i)
		}
	}
}

// TestBatchMemoryPerDocument: the constant behind "memory is O(distinct
// documents)".
func TestBatchMemoryPerDocument(t *testing.T) {
	const n = 200_000
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = []byte(uuid.NewString())
	}
	seller := uuid.NewString()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b := newTouched(10 * n)
	for _, id := range ids {
		b.Add(wal.NewChange("listings", listingsCols, wal.OpUpdate,
			tuple(string(id), seller, "AVAILABLE", "y"), tuple(string(id), seller, "AVAILABLE", "x")))
	}
	b.Commit(wal.Commit{Xid: 1, EndLSN: 1})
	runtime.GC()
	runtime.ReadMemStats(&after)
	perDoc := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	t.Logf("%.0f bytes per distinct document", perDoc)
	if perDoc > 100 {
		t.Fatalf("%.0f bytes per distinct document, want at most 100", perDoc)
	}
	runtime.KeepAlive(b)
	runtime.KeepAlive(ids)
}
