package cdc_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// TestMongoOutage stops the read store under a write load. Writes keep
// succeeding; once it is back, the CDC catches up to zero drift.
func TestMongoOutage(t *testing.T) {
	ferret := itest.StartFerretDB(t)
	e := itest.New(t)
	e.UseMongo(t, ferret.URL())
	e.StartCDC(t)
	_, a := e.StartAPI(t)
	ctx := context.Background()

	w := itest.NewWorkload(a, 2)
	if err := w.Run(ctx, 100); err != nil {
		t.Fatal(err)
	}
	ferret.Stop()
	before := w.Ops.Load()
	if err := w.Run(ctx, 200); err != nil { // all of it while the read store is down
		t.Fatalf("a write failed while the read store was down: %v", err)
	}
	if w.Ops.Load() == before {
		t.Fatal("no write succeeded during the outage")
	}
	var lsnDuring string
	if err := e.PG.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsnDuring); err != nil {
		t.Fatal(err)
	}
	// The slot must not have moved past what the read store holds.
	var confirmed string
	if err := e.PG.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, e.Slot).Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	if confirmed == lsnDuring {
		t.Fatalf("the slot was acknowledged up to %s while the read store was down", confirmed)
	}
	ferret.Start()
	e.WaitConverged(t, 60*time.Second)
}

// TestIdleSlotAdvances: while our database is idle and another database on
// the cluster is busy, our slot's confirmed position keeps up with the
// server instead of holding WAL back.
func TestIdleSlotAdvances(t *testing.T) {
	e := itest.New(t)
	e.StartCDC(t)
	other := itest.New(t) // another database on the same cluster; no CDC
	ctx := context.Background()
	if _, err := other.PG.Exec(ctx, `CREATE TABLE busy (n int)`); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		if _, err := other.PG.Exec(ctx, `INSERT INTO busy SELECT generate_series(1, 1000)`); err != nil {
			t.Fatal(err)
		}
		var target uint64
		if err := other.PG.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0')::int8`).Scan(&target); err != nil {
			t.Fatal(err)
		}
		itest.Eventually(t, 15*time.Second, "our idle slot to pass the other database's writes", func() (bool, error) {
			var confirmed uint64
			err := e.PG.QueryRow(ctx, `SELECT (confirmed_flush_lsn - '0/0')::int8 FROM pg_replication_slots WHERE slot_name = $1`, e.Slot).Scan(&confirmed)
			return confirmed >= target, err
		})
	}
}

// TestReplayIsIdempotent applies the same transactions a second time,
// through a second slot created before any write, and finds every document
// byte for byte as it was.
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
	waitSlotAt(t, e, e.Slot, currentLSN(t, e))
	e.WaitConverged(t, 60*time.Second)
	before := snapshot(t, e)

	// Replay everything into the same sink.
	sink := cdc.NewProjector(e.PG, e.Reads, e.Cache(), e.Redis, consistency.KeysFor(e.RedisPrefix), e.Log)
	r := cdc.NewReader(cdc.Config{ConnString: e.PGURL, Slot: replaySlot, Publication: e.Publication, Log: e.Log}, sink)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.Run(rctx) }()
	waitSlotAt(t, e, replaySlot, currentLSN(t, e))
	cancel()
	wg.Wait()
	// The walsender lets go of the slot a moment after the reader hangs up.
	itest.Eventually(t, 30*time.Second, "the replay slot to be dropped", func() (bool, error) {
		_, err := e.PG.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, replaySlot)
		return err == nil, err
	})

	after := snapshot(t, e)
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

func currentLSN(t *testing.T, e *itest.Env) uint64 {
	t.Helper()
	var lsn uint64
	if err := e.PG.QueryRow(context.Background(), `SELECT (pg_current_wal_lsn() - '0/0')::int8`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
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
