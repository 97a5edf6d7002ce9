package cdc_test

import (
	"context"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/internal/itest"
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
	for round := 0; round < 3; round++ {
		if _, err := other.PG.Exec(ctx, `INSERT INTO users (id, display_name) SELECT gen_random_uuid(), 'Busy ' || g FROM generate_series(1, 1000) AS g`); err != nil {
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
