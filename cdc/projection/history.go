package projection

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/search"
)

// The history: every row change of a published table becomes one entry of
// the object it belongs to (a listing's image is the listing's, an order
// line the order's), with the fields a user can see before and after, and
// the annotation its transaction carried (audit). The entries of a batch
// are written before its position is announced, so a query with the
// write's token finds them. See docs/history.md.

// HistoryField is a column whose changes a history shows, under its proto
// field path.
type HistoryField struct {
	Path   string
	Column string
	// Summarised columns are long texts: their values are cut to
	// summaryRunes.
	Summarised bool
	// Object columns hold a JSON object; an empty one shows as no value.
	Object bool
}

// Show is what the history keeps of a value of the field.
func (f HistoryField) Show(v string) string {
	switch {
	case f.Summarised:
		return summarise(v)
	case f.Object && v == "{}":
		return ""
	}
	return v
}

// HistoryTable says which object a table's rows belong to and which of its
// columns the history shows.
type HistoryTable struct {
	Object   string // search.ObjectListing, ...
	IDColumn string
	Fields   []HistoryField
	// Element, if set, makes the row one element of a list field of the
	// object (an image of a listing, a line of an order): its value is the
	// Column named, added or removed as a whole.
	Element *HistoryField
}

// HistoryTables are the published tables, by name. projections verify
// compares the fields of the tables without Element with their rows.
var HistoryTables = map[string]HistoryTable{
	"listings": {Object: search.ObjectListing, IDColumn: "id", Fields: []HistoryField{
		{Path: "title", Column: "title"},
		{Path: "description", Column: "description", Summarised: true},
		{Path: "category", Column: "category"},
		{Path: "condition", Column: "condition"},
		{Path: "price.currency_code", Column: "price_currency"},
		{Path: "price.amount_minor", Column: "price_minor"},
		{Path: "attributes", Column: "attributes", Object: true},
		{Path: "status", Column: "status"},
	}},
	"orders": {Object: search.ObjectOrder, IDColumn: "id", Fields: []HistoryField{
		{Path: "status", Column: "status"},
		{Path: "total.currency_code", Column: "total_currency"},
		{Path: "total.amount_minor", Column: "total_minor"},
	}},
	"users": {Object: search.ObjectUser, IDColumn: "id", Fields: []HistoryField{
		{Path: "display_name", Column: "display_name"},
		{Path: "bio", Column: "bio", Summarised: true},
	}},
	"reviews": {Object: search.ObjectReview, IDColumn: "id", Fields: []HistoryField{
		{Path: "rating", Column: "rating"},
		{Path: "comment", Column: "comment", Summarised: true},
	}},
	"listing_media": {Object: search.ObjectListing, IDColumn: "listing_id", Element: &HistoryField{Path: "media", Column: "id"}},
	"order_items":   {Object: search.ObjectOrder, IDColumn: "order_id", Element: &HistoryField{Path: "items", Column: "listing_id"}},
}

// summaryRunes bounds a summarised value: the history says what a long
// text became, not every word of it.
const summaryRunes = 200

// summarise cuts a long text to what the history keeps of it.
func summarise(s string) string {
	if utf8.RuneCountInString(s) <= summaryRunes {
		return s
	}
	r := []rune(s)
	return string(r[:summaryRunes-1]) + "…"
}

// historyFlush is how many entries a batch holds before it writes them,
// mid-transaction if need be: a transaction of any size costs this many
// entries of memory. The entries of a transaction are final once decoded
// (pgoutput sends committed transactions only), and a replay writes the
// same (position, seq) again, which the store ignores.
const historyFlush = 2000

// historyWriteTimeout bounds a flush made while decoding, which has no
// caller's context.
const historyWriteTimeout = time.Minute

// historyLog is a batch's history: the open transaction's annotation and
// the entries not written yet.
type historyLog struct {
	store   *search.Store
	base    int64
	note    audit.Annotation
	noted   bool
	entries []search.HistoryEntry
	// err is the first failed mid-batch write: Apply returns it, so the
	// batch is not announced and its transactions are received again.
	err error
}

// commit closes the open transaction: the next one has its own annotation.
func (h *historyLog) commit() { h.note, h.noted = audit.Annotation{}, false }

func (h *historyLog) add(c *wal.Change) {
	t, ok := HistoryTables[c.Table]
	if !ok || c.Op == wal.OpTruncate {
		return
	}
	idText, ok := c.Text(t.IDColumn)
	if !ok {
		return
	}
	id, err := uuid.Parse(idText)
	if err != nil {
		return
	}
	e := search.HistoryEntry{
		Position: h.base + int64(c.CommitLSN), Seq: int32(c.Seq), CommitTime: c.CommitTime.UTC(),
		ObjectType: t.Object, ObjectID: id, Annotated: h.noted,
		Actor: h.note.Actor, RPC: h.note.RPC, RequestID: h.note.RequestID,
		IdempotencyKey: h.note.IdempotencyKey, TraceParent: h.note.TraceParent,
	}
	if t.Element != nil {
		if !elementChange(&e, c, t.Element) {
			return
		}
	} else {
		e.Operation, e.Changes = fieldChanges(c, t.Fields)
		if e.Operation == search.OpUpdated && len(e.Changes) == 0 {
			return // nothing a user can see changed (a version, a timestamp)
		}
	}
	h.entries = append(h.entries, e)
	if len(h.entries) >= historyFlush && h.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), historyWriteTimeout)
		defer cancel()
		if err := h.store.WriteHistory(ctx, h.entries); err != nil {
			h.err = fmt.Errorf("%w: write history mid-batch: %w", wal.ErrReceiveAgain, err)
		}
		h.entries = h.entries[:0]
	}
}

func fieldChanges(c *wal.Change, fields []HistoryField) (string, []search.FieldChange) {
	var out []search.FieldChange
	op := search.OpUpdated
	switch c.Op {
	case wal.OpInsert:
		op = search.OpCreated
	case wal.OpDelete:
		op = search.OpDeleted
	}
	for _, f := range fields {
		var before, after string
		switch c.Op {
		case wal.OpInsert:
			after, _ = c.NewText(f.Column)
		case wal.OpDelete:
			before, _ = c.OldText(f.Column)
		default:
			if c.Unchanged(f.Column) {
				continue
			}
			after, _ = c.NewText(f.Column)
			before, _ = c.OldText(f.Column)
			if before == after {
				continue
			}
		}
		before, after = f.Show(before), f.Show(after)
		if before == "" && after == "" {
			continue
		}
		out = append(out, search.FieldChange{Field: f.Path, Before: before, After: after})
	}
	return op, out
}

// elementChange records a row that is one element of an object's list:
// an image counts once confirmed (a pending upload shows nowhere), an
// order line when it is written.
func elementChange(e *search.HistoryEntry, c *wal.Change, f *HistoryField) bool {
	v, _ := c.Text(f.Column)
	e.Operation = search.OpUpdated
	visible := func(row func(string) (string, bool)) bool {
		s, ok := row("status")
		return !ok || s == "CONFIRMED" // order_items has no status
	}
	switch c.Op {
	case wal.OpInsert:
		if !visible(c.NewText) {
			return false
		}
		e.Changes = []search.FieldChange{{Field: f.Path, After: v}}
	case wal.OpDelete:
		if !visible(c.OldText) {
			return false
		}
		e.Changes = []search.FieldChange{{Field: f.Path, Before: v}}
	default:
		// An image becomes visible when confirmed; other updates (a
		// thumbnail) change nothing the history shows.
		if !visible(c.NewText) || visible(c.OldText) {
			return false
		}
		e.Changes = []search.FieldChange{{Field: f.Path, After: v}}
	}
	return true
}
