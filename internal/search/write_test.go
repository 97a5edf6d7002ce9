package search

import (
	"context"
	"sync"
	"testing"
)

func TestFenceKeepsTheNewestWrite(t *testing.T) {
	s := newStore(t, Options{})
	l := listing(1, "Oak chair")
	l.LSN = 100
	apply(t, s, Batch{Position: 100, Listings: []Listing{l}})

	title := func() string {
		p := search(t, s, Query{})
		if len(p.Listings) == 0 {
			return ""
		}
		return p.Listings[0].Title
	}
	older := l
	older.LSN, older.Title = 90, "Pine chair"
	apply(t, s, Batch{Position: 90, Listings: []Listing{older}})
	if got := title(); got != "Oak chair" {
		t.Fatalf("a write at a lower position replaced the row: title %q", got)
	}
	same := l
	same.Title = "Birch chair"
	apply(t, s, Batch{Position: 100, Listings: []Listing{same}})
	if got := title(); got != "Oak chair" {
		t.Fatalf("a write at an equal position replaced the row: title %q", got)
	}
	// A deletion wins a tie (a full pass's sweep, after its pages).
	tied := listing(2, "Tied chair")
	tied.LSN = 100
	apply(t, s, Batch{Position: 100, Listings: []Listing{tied}})
	apply(t, s, Batch{Position: 100, Deleted: []Deletion{{ID: tied.ID, LSN: 100}}})
	apply(t, s, Batch{Position: 100, Listings: []Listing{tied}})
	if p := search(t, s, Query{Text: "tied"}); len(p.Listings) != 0 {
		t.Fatalf("a deletion at an equal position did not remove the row, or a write at it brought it back: %v", p.Listings)
	}
	apply(t, s, Batch{Position: 95, Deleted: []Deletion{{ID: l.ID, LSN: 95}}})
	if got := title(); got != "Oak chair" {
		t.Fatalf("a deletion at a lower position removed the row: title %q", got)
	}
	newer := l
	newer.LSN, newer.Title = 110, "Walnut chair"
	apply(t, s, Batch{Position: 110, Listings: []Listing{newer}})
	if got := title(); got != "Walnut chair" {
		t.Fatalf("a newer write did not land: title %q", got)
	}
	apply(t, s, Batch{Position: 120, Deleted: []Deletion{{ID: l.ID, LSN: 120}}})
	if got := title(); got != "" {
		t.Fatalf("the deleted listing is still found: %q", got)
	}
	// A zombie replays the listing as it was before the deletion.
	apply(t, s, Batch{Position: 110, Listings: []Listing{newer}})
	if got := title(); got != "" {
		t.Fatalf("a zombie's older write brought a deleted listing back: %q", got)
	}
	if n := categories(t, s)["furniture"]; n != 0 {
		t.Fatalf("furniture counts %d after the only listing was deleted", n)
	}
	g, err := s.Live(context.Background())
	if err != nil || g.AppliedLSN != 120 {
		t.Fatalf("applied position %d (%v), want 120: a zombie's lower position must not lower it", g.AppliedLSN, err)
	}
	// Within one batch, the latest write of a listing wins.
	a, b := newer, newer
	a.ID, b.ID = listing(9, "").ID, ""
	b = a
	a.LSN, a.Title = 200, "First"
	b.LSN, b.Title = 201, "Second"
	apply(t, s, Batch{Position: 201, Listings: []Listing{b, a}})
	if got := title(); got != "Second" {
		t.Fatalf("two writes of one listing in a batch: title %q, want the later one", got)
	}
}

func TestCategoryCountsFollowTheRows(t *testing.T) {
	s := newStore(t, Options{})
	a, b, c := listing(1, "Chair"), listing(2, "Table"), listing(3, "Lamp")
	c.Category = "lighting"
	apply(t, s, Batch{Position: 1003, Listings: []Listing{a, b, c}})
	want := func(step string, m map[string]int64) {
		t.Helper()
		got := categories(t, s)
		if len(got) != len(m) {
			t.Fatalf("%s: categories %v, want %v", step, got, m)
		}
		for k, v := range m {
			if got[k] != v {
				t.Fatalf("%s: categories %v, want %v", step, got, m)
			}
		}
	}
	want("inserts", map[string]int64{"furniture": 2, "lighting": 1})

	moved := b
	moved.Category, moved.LSN = "lighting", 2000
	apply(t, s, Batch{Position: 2000, Listings: []Listing{moved}})
	want("a listing moved", map[string]int64{"furniture": 1, "lighting": 2})

	sold := a
	sold.Status, sold.LSN = "SOLD", 2001
	apply(t, s, Batch{Position: 2001, Listings: []Listing{sold}})
	want("a listing sold", map[string]int64{"lighting": 2})

	// A replay of the first batch, and a zombie's stale copy of the move.
	apply(t, s, Batch{Position: 1003, Listings: []Listing{a, b, c}})
	apply(t, s, Batch{Position: 2000, Listings: []Listing{moved}})
	want("replays", map[string]int64{"lighting": 2})

	back := sold
	back.Status, back.LSN = StatusAvailable, 2002
	apply(t, s, Batch{Position: 2002, Listings: []Listing{back}, Deleted: []Deletion{{ID: c.ID, LSN: 2002}}})
	want("a sale cancelled and a listing deleted", map[string]int64{"furniture": 1, "lighting": 1})
}

// Two writers (a leader and a paused old one) applying overlapping
// batches at once leave the rows and the counts as the newest writes say.
func TestConcurrentWritersLeaveCountsRight(t *testing.T) {
	s := newStore(t, Options{})
	g := live(t, s)
	const n = 40
	rows := make([]Listing, n)
	for i := range rows {
		rows[i] = listing(i, "Thing")
	}
	cats := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for round := 0; round < 30; round++ {
				batch := make([]Listing, n)
				for i, l := range rows {
					l.Category = cats[(i+round+w)%len(cats)]
					l.LSN = int64(round*10 + w) // writer 1 is always newer within a round
					batch[i] = l
				}
				if err := s.Apply(context.Background(), g, Batch{Position: int64(round*10 + w), Listings: batch}); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	want := map[string]int64{}
	for i := range rows {
		want[cats[(i+29+1)%len(cats)]]++ // the last round of writer 1
	}
	got := categories(t, s)
	for _, c := range cats {
		if got[c] != want[c] {
			t.Fatalf("counts %v, want %v", got, want)
		}
	}
}

// A batch with no listing change still advances the applied position, so
// a page read after it reports the batch's position.
func TestEmptyBatchAdvancesThePosition(t *testing.T) {
	s := newStore(t, Options{})
	apply(t, s, Batch{Position: 42})
	p := search(t, s, Query{})
	if p.LSN != 42 || len(p.Listings) != 0 {
		t.Fatalf("page after an empty batch: %d listings at %d, want none at 42", len(p.Listings), p.LSN)
	}
	_, lsn, err := s.Categories(context.Background())
	if err != nil || lsn != 42 {
		t.Fatalf("categories after an empty batch: position %d, %v", lsn, err)
	}
}

func TestRowsPagesThroughAGenerationWithoutTombstones(t *testing.T) {
	s := newStore(t, Options{})
	var rows []Listing
	for i := 0; i < 7; i++ {
		rows = append(rows, listing(i, "Chair"))
	}
	rows[2].Status = "SOLD"
	apply(t, s, Batch{Position: 2000, Listings: rows, Deleted: []Deletion{{ID: rows[4].ID, LSN: 2000}}})
	var got []Listing
	after := ""
	for {
		page, err := s.Rows(context.Background(), live(t, s), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	if len(got) != 6 {
		t.Fatalf("Rows returned %d listings, want 6 (7 written, 1 deleted; a sold one stays)", len(got))
	}
	for i, l := range got {
		if i > 0 && got[i-1].ID >= l.ID {
			t.Fatalf("Rows out of id order at %d", i)
		}
		if l.ID == rows[4].ID {
			t.Fatal("Rows returned a tombstone")
		}
	}
}
