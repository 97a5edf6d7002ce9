package projection_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// measuringSink is the projector's collection step and nothing after it:
// Apply measures the live heap while the reader holds the whole batch,
// and writes nothing.
type measuringSink struct {
	proj    *projection.Projector
	applied chan measured
}

type measured struct {
	heap int64 // heap in use at Apply
	docs int
}

func (s *measuringSink) NewBatch() wal.Batch { return s.proj.NewBatch() }

func (s *measuringSink) Apply(_ context.Context, b wal.Batch) error {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	select {
	case s.applied <- measured{int64(m.HeapAlloc), b.Size()}:
	default: // a batch nobody waits for
	}
	runtime.KeepAlive(b)
	return nil
}

func (s *measuringSink) Reached(context.Context, pglogrepl.LSN) error { return nil }

// next waits for a batch of at least n documents.
func (s *measuringSink) next(t *testing.T, n int) measured {
	t.Helper()
	deadline := time.After(10 * time.Minute)
	for {
		select {
		case m := <-s.applied:
			if m.docs >= n {
				return m
			}
		case <-deadline:
			t.Fatalf("no batch of %d documents reached the sink", n)
		}
	}
}

// TestBigTransactionMemory: one transaction of 200,000 changed listing
// rows (REPLICA IDENTITY FULL: old and new rows, about 350 bytes each)
// passes through the reader and the projector's collection step holding
// what its distinct documents need, not what its rows weigh.
func TestBigTransactionMemory(t *testing.T) {
	const rows = 200_000
	// 20 bytes and a map slot per listing, with room for the map's growth
	// and the reader's buffers; the rows themselves weigh over 140 MB.
	const bound = 24 << 20
	e := itest.New(t)
	ctx := context.Background()

	proj := e.Projector()
	proj.SpillDocs = 10 * rows // hold every id: measure the set, not the spill
	sink := &measuringSink{proj: proj, applied: make(chan measured, 16)}
	// The baseline is taken before the reader exists: when the update's
	// batch is measured, the import's batch has been dropped, but at the
	// moment the import reaches the sink it is still live.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// The slot exists before the seed, so the server streams the seed
	// rather than decoding it again from an older restart point.
	e.StartReader(t, wal.Config{MaxBatchDocs: 10 * rows}, sink, nil)
	e.SeedOneSeller(t, rows)
	sink.next(t, rows) // the import

	if _, err := e.PG.Exec(ctx, `UPDATE listings SET price_minor = price_minor + 1, description = description || '.'`); err != nil {
		t.Fatal(err)
	}
	m := sink.next(t, rows)
	growth := m.heap - int64(before.HeapAlloc)
	t.Logf("%d rows: the batch holds %d documents; heap grew %.1f MiB (%.0f bytes per row)",
		rows, m.docs, float64(growth)/(1<<20), float64(growth)/rows)
	if m.docs != rows { // every listing; a price edit leaves the seller's profile alone
		t.Fatalf("the batch holds %d documents, want %d", m.docs, rows)
	}
	if growth > bound {
		t.Fatalf("heap grew %.1f MiB holding one transaction of %d rows, bound %d MiB",
			float64(growth)/(1<<20), rows, bound>>20)
	}
}

// TestBigTransactionsOnTheRealSink: a bulk import, a catalogue-wide update,
// deletions, and a rename fanning out to every listing, each one
// transaction of 10,000 rows, end with the read side equal to Postgres.
// The spill bound is set below their size, so the import and the update go
// through the full pass and its sweep, the rename through the paged
// fan-out. (FerretDB writes a few hundred documents a second here; the
// bench applies a 100k-row and a 1M-row transaction.)
func TestBigTransactionsOnTheRealSink(t *testing.T) {
	const rows = 10_000
	e := itest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := e.CDCProcess()
	p.Sink.SpillDocs = rows / 4
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("cdc: %v", err)
		}
	})
	e.WaitForSlot(t)

	seller := e.SeedOneSeller(t, rows)
	steps := []string{
		`UPDATE listings SET price_minor = price_minor * 2, version = version + 1`,
		`DELETE FROM listings WHERE id IN (SELECT id FROM listings ORDER BY id LIMIT 50)`,
	}
	for _, s := range steps {
		if _, err := e.PG.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.PG.Exec(ctx, `UPDATE users SET display_name = 'Renamed Seller' WHERE id = $1`, seller); err != nil {
		t.Fatal(err)
	}
	var target uint64
	if err := e.PG.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::int8`).Scan(&target); err != nil {
		t.Fatal(err)
	}
	keys := cache.AppliedKeysFor(e.RedisPrefix)
	itest.Eventually(t, 10*time.Minute, "the CDC to apply the bulk transactions", func() (bool, error) {
		s, err := e.Redis.Get(ctx, keys.Applied).Result()
		if err != nil {
			return false, err
		}
		applied, err := strconv.ParseUint(s, 16, 64)
		return applied >= target, err
	})
	d, err := e.Drift(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d != "" {
		t.Fatalf("drift after the bulk transactions:\n%s", d)
	}
}
