package cdc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// gatedSink records the size of each batch; its first Apply blocks until
// release is closed.
type gatedSink struct {
	entered chan struct{}
	release chan struct{} // closed by open
	once    sync.Once
	opened  sync.Once

	mu      sync.Mutex
	batches []int
}

func (s *gatedSink) Apply(ctx context.Context, txs []*cdc.Txn) error {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.entered)
		<-s.release // the reader's context for Apply is never cancelled
	}
	s.mu.Lock()
	s.batches = append(s.batches, len(txs))
	s.mu.Unlock()
	return nil
}

func (s *gatedSink) open() { s.opened.Do(func() { close(s.release) }) }

func (s *gatedSink) Reached(context.Context, pglogrepl.LSN) error { return nil }

func (s *gatedSink) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.batches...)
}

// TestBacklogIsAppliedInOneBatch: commits that queue up while the sink
// is busy are applied together, however many keepalives the server sends
// between them. (It sends one whenever it catches up with the WAL, which
// under load is after every transaction: a reader that cut its batch at
// each keepalive applied one commit per round trip to the read store.)
func TestBacklogIsAppliedInOneBatch(t *testing.T) {
	e := itest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	sink := &gatedSink{entered: make(chan struct{}), release: make(chan struct{})}
	r := cdc.NewReader(cdc.Config{
		ConnString: e.PGURL, Slot: e.Slot, Publication: e.Publication, CreateSlot: true, Log: e.Log,
		// A batch closes after a second of silence: the backlog reaches
		// the socket within it, so only the reader itself can split it.
		Linger: time.Second, MaxBatchAge: time.Minute,
	}, sink)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		sink.open()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("reader: %v", err)
		}
	})
	itest.Eventually(t, 30*time.Second, "the slot to be created", func() (bool, error) {
		var n int
		err := e.PG.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, e.Slot).Scan(&n)
		return n == 1, err
	})

	id := uuid.New()
	if _, err := e.PG.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, 'first')`, id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sink.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the first commit never reached the sink")
	}
	const backlog = 20
	for i := range backlog {
		if _, err := e.PG.Exec(ctx, `UPDATE users SET bio = $2 WHERE id = $1`, id, string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	// The reader is still inside the first Apply; every commit since
	// reaches its socket, each followed by a keepalive.
	sink.open()
	itest.Eventually(t, 30*time.Second, "the backlog to be applied", func() (bool, error) {
		n := 0
		for _, b := range sink.sizes() {
			n += b
		}
		return n == 1+backlog, nil
	})
	if got := sink.sizes(); len(got) != 2 || got[1] != backlog {
		t.Fatalf("batches %v, want [1 %d]: the backlog was applied piecemeal", got, backlog)
	}
}
