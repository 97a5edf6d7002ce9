package projection

import (
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/search"
)

func row(cols ...any) *pglogrepl.TupleData {
	t := &pglogrepl.TupleData{}
	for _, c := range cols {
		switch v := c.(type) {
		case nil:
			t.Columns = append(t.Columns, &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeNull})
		case byte: // 'u': an unchanged TOASTed value
			t.Columns = append(t.Columns, &pglogrepl.TupleDataColumn{DataType: v})
		case string:
			t.Columns = append(t.Columns, &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeText, Data: []byte(v)})
		}
	}
	return t
}

// TestHistoryEntriesOfRowChanges: an update records only what a user can
// see changed, an unchanged TOASTed description is not a change, long
// texts are summarised, a pending image is invisible until confirmed, and
// an update that changes nothing visible records nothing.
func TestHistoryEntriesOfRowChanges(t *testing.T) {
	cols := []string{"id", "title", "description", "price_minor", "version", "attributes"}
	id := "0193aaaa-0000-7000-8000-000000000001"
	h := &historyLog{base: 100}
	b := &touched{hist: h}
	b.Annotate("swapmeet.audit.v1", []byte(`{"actor":"u1","rpc":"swapmeet.v1.ListingService/UpdateListing","request_id":"r1","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`))
	b.Annotate("another.prefix", []byte(`{"actor":"intruder"}`))
	if len(b.TraceParents()) != 1 {
		t.Fatalf("trace parents %v", b.TraceParents())
	}
	long := strings.Repeat("é", 300)
	add := func(table string, cols []string, op wal.Op, newT, oldT *pglogrepl.TupleData, seq int) {
		c := wal.NewChange(table, cols, op, newT, oldT)
		c.CommitLSN, c.Seq = 1000, seq
		h.add(c)
	}
	add("listings", cols, wal.OpInsert, row(id, "Lamp", long, "2500", "1", "{}"), nil, 1)
	add("listings", cols, wal.OpUpdate, row(id, "Lamp", byte('u'), "1900", "2"), row(id, "Lamp", long, "2500", "1"), 2)
	add("listings", cols, wal.OpUpdate, row(id, "Lamp", byte('u'), "1900", "3"), row(id, "Lamp", long, "1900", "2"), 3)
	mcols := []string{"id", "listing_id", "status"}
	add("listing_media", mcols, wal.OpInsert, row("0193aaaa-0000-7000-8000-00000000000a", id, "PENDING"), nil, 4)
	add("listing_media", mcols, wal.OpUpdate, row("0193aaaa-0000-7000-8000-00000000000a", id, "CONFIRMED"), row("0193aaaa-0000-7000-8000-00000000000a", id, "PENDING"), 5)
	add("sessions", []string{"token_hash"}, wal.OpInsert, row("x"), nil, 6)

	if len(h.entries) != 3 {
		t.Fatalf("%d entries, want the creation, the price edit and the confirmed image: %+v", len(h.entries), h.entries)
	}
	created, edit, image := h.entries[0], h.entries[1], h.entries[2]
	if created.Operation != search.OpCreated || created.Position != 1100 || !created.Annotated || created.Actor != "u1" {
		t.Fatalf("creation %+v", created)
	}
	for _, c := range created.Changes {
		if c.Field == "attributes" {
			t.Fatalf("empty attributes recorded as %+v", c)
		}
		if c.Field == "description" && ([]rune(c.After)[len([]rune(c.After))-1] != '…' || len([]rune(c.After)) != summaryRunes) {
			t.Fatalf("the description is not summarised: %d runes", len([]rune(c.After)))
		}
	}
	if len(edit.Changes) != 1 || edit.Changes[0] != (search.FieldChange{Field: "price.amount_minor", Before: "2500", After: "1900"}) {
		t.Fatalf("the price edit records %+v", edit.Changes)
	}
	if image.Changes[0].Field != "media" || image.Changes[0].After == "" || image.Seq != 5 {
		t.Fatalf("the confirmed image records %+v", image)
	}
	h.commit()
	add("listings", cols, wal.OpUpdate, row(id, "Desk lamp", byte('u'), "1900", "4"), row(id, "Lamp", long, "1900", "3"), 1)
	if e := h.entries[3]; e.Annotated || e.Actor != "" {
		t.Fatalf("the next transaction, unannotated, carries %+v", e)
	}
}
