package itest

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/cdc/wal"
)

// StartReader runs a reader on e's slot (creating it) until the test ends,
// logging into logs when it is not nil, and returns once it streams.
// ConnString defaults to e's database; the slot, publication and logger
// are e's.
func (e *Env) StartReader(t T, cfg wal.Config, sink wal.Sink, logs *Output) *wal.Reader {
	t.Helper()
	if cfg.ConnString == "" {
		cfg.ConnString = e.PGURL
	}
	cfg.Slot, cfg.Publication, cfg.CreateSlot, cfg.Log = e.Slot, e.Publication, true, e.Log
	if logs != nil {
		cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := wal.NewReader(cfg, sink)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("reader: %v", err)
		}
	})
	Eventually(t, 30*time.Second, "the slot to be streamed", func() (bool, error) {
		var n int
		err := e.PG.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, e.Slot).Scan(&n)
		return n == 1, err
	})
	return r
}

// CurrentLSN is the server's current WAL write position.
func (e *Env) CurrentLSN(t T) uint64 {
	t.Helper()
	var lsn uint64
	if err := e.PG.QueryRow(context.Background(), `SELECT (pg_current_wal_lsn() - '0/0')::int8`).Scan(&lsn); err != nil {
		t.Fatalf("current LSN: %v", err)
	}
	return lsn
}

// SeedOneSeller gives one new seller n listings with descriptions of about
// 320 characters, in one statement, and returns the seller.
func (e *Env) SeedOneSeller(t T, n int) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	seller := uuid.New()
	if _, err := e.PG.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, 'Bulk Seller')`, seller); err != nil {
		t.Fatalf("seed a seller: %v", err)
	}
	_, err := e.PG.Exec(ctx, `
		INSERT INTO listings (id, seller_id, title, description, category, condition, price_currency, price_minor, attributes)
		SELECT gen_random_uuid(), $1, 'Item ' || g, repeat(md5(g::text), 10), 'misc', 'GOOD', 'EUR', 1000,
		       jsonb_build_object('colour', 'red', 'size', (g % 7)::text, 'era', '1970s')
		FROM generate_series(1, $2::int) g`, seller, n)
	if err != nil {
		t.Fatalf("seed %d listings: %v", n, err)
	}
	return seller
}
