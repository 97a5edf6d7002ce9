package search

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
)

var historyRows = flag.Int("history.rows", 300_000, "entries TestHistoryPlan loads")

// TestHistoryPlan loads a history of 12 months (one hot object with 5,000
// entries among 30,000 objects) and reads the hot object's pages: each
// page is a merge of per-month index scans in the object's order, with no
// sort, reading at most a page (and one more row) per month; the second
// page starts where the first ended. Then retention drops whole months.
func TestHistoryPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a history")
	}
	s := newStore(t, Options{})
	ctx := context.Background()
	hot := uuid.New()
	objects := make([]uuid.UUID, 30_000)
	for i := range objects {
		objects[i] = uuid.New()
	}
	start := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	span := 365 * 24 * time.Hour
	n := *historyRows
	const chunk = 10_000
	for from := 0; from < n; from += chunk {
		var batch []HistoryEntry
		for i := from; i < min(n, from+chunk); i++ {
			id := objects[i%len(objects)]
			if i%(n/5000) == 0 {
				id = hot
			}
			batch = append(batch, HistoryEntry{
				Position: int64(1000 + i), Seq: 1, CommitTime: start.Add(time.Duration(float64(span) * float64(i) / float64(n))),
				ObjectType: ObjectListing, ObjectID: id, Operation: OpUpdated, Annotated: true, Actor: "u", RPC: "r",
				Changes: []FieldChange{{Field: "price.amount_minor", Before: fmt.Sprint(i), After: fmt.Sprint(i + 1)}},
			})
		}
		if err := s.WriteHistory(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE history"); err != nil {
		t.Fatal(err)
	}
	page, next, err := s.History(ctx, ObjectListing, hot, 20, "")
	if err != nil || len(page) != 20 || next == "" {
		t.Fatalf("first page: %d entries, next %q, %v", len(page), next, err)
	}
	second, _, err := s.History(ctx, ObjectListing, hot, 20, next)
	if err != nil || len(second) != 20 || second[0].Position >= page[19].Position {
		t.Fatalf("second page: %d entries from %d after %d, %v", len(second), second[0].Position, page[19].Position, err)
	}
	if _, _, err := s.History(ctx, ObjectListing, uuid.New(), 20, next); err != ErrBadHistoryToken {
		t.Fatalf("another object's page token: %v, want ErrBadHistoryToken", err)
	}
	for _, token := range []string{"", next} {
		var raw []byte
		after := historyCursor{Pos: 1<<63 - 1, Seq: 1<<31 - 1}
		if token != "" {
			after = historyCursor{Pos: page[19].Position, Seq: page[19].Seq}
		}
		err := s.pool.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) SELECT position, seq FROM history
			WHERE object_type = $1 AND object_id = $2 AND (position, seq) < ($3, $4)
			ORDER BY position DESC, seq DESC LIMIT 21`, ObjectListing, hot, after.Pos, after.Seq).Scan(&raw)
		if err != nil {
			t.Fatal(err)
		}
		var doc []struct {
			Plan planNode `json:"Plan"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		read, scans, sorted := 0, 0, false
		var walk func(n planNode)
		walk = func(n planNode) {
			switch n.Type {
			case "Sort":
				sorted = true
			case "Index Scan", "Index Only Scan", "Seq Scan", "Bitmap Heap Scan":
				scans++
				read += int(n.Rows+n.Filtered+n.Rechecked) * max(n.Loops, 1)
				if n.Type != "Index Scan" && n.Type != "Index Only Scan" {
					sorted = true // not an ordered walk of the index
				}
			}
			for _, c := range n.Plans {
				walk(c)
			}
		}
		walk(doc[0].Plan)
		if sorted || read > scans*21 || scans > 13 {
			t.Fatalf("page after %q: %d scans read %d rows, sorted %v:\n%s", token, scans, read, sorted, raw)
		}
		t.Logf("page after %q: %d monthly index scans read %d rows", token, scans, read)
	}

	dropped, err := s.PruneHistory(ctx, start.AddDate(0, 6, 0))
	if err != nil || len(dropped) != 6 || dropped[0] != "history_2025_12" {
		t.Fatalf("retention of 6 months dropped %v, %v", dropped, err)
	}
	rest, _, err := s.History(ctx, ObjectListing, hot, 100, "")
	if err != nil || len(rest) == 0 || rest[len(rest)-1].CommitTime.Before(start.AddDate(0, 6, 0)) {
		t.Fatalf("after retention: %d entries, the oldest %v, %v", len(rest), rest[len(rest)-1].CommitTime, err)
	}
}
