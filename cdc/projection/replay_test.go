package projection_test

import (
	"bytes"
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
)

// TestReplayIsIdempotent applies the same transactions a second time,
// through a second slot created before any write, and finds every document
// byte for byte as it was, and every search row as it was, position
// included.
func TestReplayIsIdempotent(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	replaySlot := e.Slot + "_replay"
	if _, err := e.PG.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, replaySlot); err != nil {
		t.Fatal(err)
	}
	e.StartCDC(t)
	_, a := e.StartAPI(t)
	if err := itest.NewWorkload(a, 3).Run(ctx, 300); err != nil {
		t.Fatal(err)
	}
	// The live CDC must be done, stamps included, before the snapshot.
	waitSlotAt(t, e, e.Slot, e.CurrentLSN(t))
	e.WaitConverged(t, 60*time.Second)
	before := snapshot(t, e)

	// Replay everything into the same sink.
	searchBefore := searchRows(t, e)
	sink := projection.NewProjector(e.PG, e.Reads, e.Cache(), e.Redis, cache.AppliedKeysFor(e.RedisPrefix), e.Log).WithSearch(e.Search)
	r := wal.NewReader(wal.Config{ConnString: e.PGURL, Slot: replaySlot, Publication: e.Publication, Log: e.Log}, sink)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.Run(rctx) }()
	waitSlotAt(t, e, replaySlot, e.CurrentLSN(t))
	cancel()
	wg.Wait()
	// The walsender lets go of the slot a moment after the reader hangs up.
	itest.Eventually(t, 30*time.Second, "the replay slot to be dropped", func() (bool, error) {
		_, err := e.PG.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, replaySlot)
		return err == nil, err
	})

	after := snapshot(t, e)
	if searchAfter := searchRows(t, e); !reflect.DeepEqual(searchBefore, searchAfter) {
		t.Errorf("the search rows changed on replay:\nbefore %v\nafter  %v", searchBefore, searchAfter)
	}
	for coll, docs := range before {
		if len(after[coll]) != len(docs) {
			t.Fatalf("%s: %d documents before the replay, %d after", coll, len(docs), len(after[coll]))
		}
		for id, raw := range docs {
			if !bytes.Equal(raw, after[coll][id]) {
				t.Errorf("%s %s changed on replay:\nbefore %s\nafter  %s", coll, id, bson.Raw(raw), bson.Raw(after[coll][id]))
			}
		}
	}
}

// waitSlotAt waits until a slot has acknowledged lsn: everything before
// it is applied.
func waitSlotAt(t *testing.T, e *itest.Env, slot string, lsn uint64) {
	t.Helper()
	itest.Eventually(t, 60*time.Second, "slot "+slot+" to acknowledge the end of the WAL", func() (bool, error) {
		var confirmed uint64
		err := e.PG.QueryRow(context.Background(), `SELECT (confirmed_flush_lsn - '0/0')::int8 FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&confirmed)
		return confirmed >= lsn, err
	})
}

func snapshot(t *testing.T, e *itest.Env) map[string]map[string]bson.Raw {
	t.Helper()
	out := map[string]map[string]bson.Raw{}
	for _, c := range readstore.Collections {
		out[c] = map[string]bson.Raw{}
		err := e.Reads.Each(context.Background(), c, func(raw bson.Raw) error {
			id, _ := raw.Lookup("_id").StringValueOK()
			out[c][id] = append(bson.Raw(nil), raw...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out[readstore.Listings]) == 0 || len(out[readstore.Orders]) == 0 {
		t.Fatalf("the workload produced no listings or orders: %v", out)
	}
	return out
}

// searchRows reads every row of the live search generation, positions
// included.
func searchRows(t *testing.T, e *itest.Env) []search.Listing {
	t.Helper()
	live, err := e.Search.Live(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []search.Listing
	for after := ""; ; {
		rows, err := e.Search.Rows(context.Background(), live.ID, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		out = append(out, rows...)
		after = rows[len(rows)-1].ID
	}
	if len(out) == 0 {
		t.Fatal("no search rows")
	}
	return out
}
