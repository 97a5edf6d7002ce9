package cdc_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// heldSink passes everything to the sink it wraps, except that once
// armed, the next Apply waits until the sink is opened.
type heldSink struct {
	wal.Sink
	mu      sync.Mutex
	armed   bool
	entered chan struct{} // closed when the held Apply has begun
	release chan struct{} // closed by open
	opened  sync.Once
}

func newHeldSink(inner wal.Sink) *heldSink {
	return &heldSink{Sink: inner, entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *heldSink) Apply(ctx context.Context, b wal.Batch) error {
	s.mu.Lock()
	held := s.armed
	s.armed = false
	s.mu.Unlock()
	if held {
		close(s.entered)
		<-s.release
	}
	return s.Sink.Apply(ctx, b)
}

// hold makes the next Apply wait; call it once.
func (s *heldSink) hold() {
	s.mu.Lock()
	s.armed = true
	s.mu.Unlock()
}

func (s *heldSink) open() { s.opened.Do(func() { close(s.release) }) }

// logWatch is a slog handler that keeps the messages logged through it.
type logWatch struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logWatch) WithGroup(string) slog.Handler            { return h }
func (h *logWatch) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

// find returns the first message containing any of subs.
func (h *logWatch) find(subs ...string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		for _, s := range subs {
			if strings.Contains(m, s) {
				return m, true
			}
		}
	}
	return "", false
}

// TestRebuildHandoverUnderLag rebuilds listings while the live CDC is
// held inside a batch, and writes users, orders and reviews meanwhile.
// The catch-up confirms the new slot past those writes but feeds only the
// listings shadow, so the live CDC must apply them from the old slot
// before it moves: after the handover and the old slot's drop, nothing is
// missing from any collection.
//
// The order of events makes a handover at the new slot's start lose the
// writes every time: the live CDC has applied past that start, and is
// held, before the writes; the gate opens only after the CDC has decided
// about the switch (it logs either way).
func TestRebuildHandoverUnderLag(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	_, a := e.StartAPI(t)

	watch := &logWatch{}
	p := e.CDCProcess()
	p.Log = slog.New(watch)
	p.Interval = 50 * time.Millisecond
	held := newHeldSink(p.Sink)
	p.Stream = held
	e.RunCDC(t, p)
	t.Cleanup(held.open) // before the CDC is stopped

	if err := itest.NewWorkload(a, 7).Run(ctx, 250); err != nil {
		t.Fatal(err)
	}
	var orders, reviews int
	if err := e.PG.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM reviews)`).Scan(&orders, &reviews); err != nil {
		t.Fatal(err)
	}
	if orders == 0 || reviews == 0 {
		t.Fatalf("the workload made %d orders and %d reviews; the test needs both", orders, reviews)
	}
	seedListings(t, e, 300)
	waitApplied(t, e, e.CurrentLSN(t))
	requireNoDrift(t, e, "before the rebuild")

	// The rebuild creates its slot, loads and indexes the shadow, then
	// stops before it takes the catch-up's target.
	pause := newPausingWriter("indexes built")
	t.Cleanup(pause.resume)
	var run rebuildRun
	rb := run.rebuild(e, readstore.Listings)
	rb.Progress = pause
	rebuilt := make(chan error, 1)
	go func() { rebuilt <- rb.Run(ctx) }()
	pause.waitPaused(t, 120*time.Second)

	// The live CDC applies a commit made after the new slot's start...
	var user string
	if err := e.PG.QueryRow(ctx, `SELECT id::text FROM users ORDER BY id LIMIT 1`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	execSQL(t, e, `UPDATE users SET bio = 'after the new slot began' WHERE id = $1`, user)
	waitApplied(t, e, e.CurrentLSN(t))
	// ...and is then held inside the batch of the next one.
	held.hold()
	execSQL(t, e, `UPDATE users SET bio = 'held' WHERE id = $1`, user)
	select {
	case <-held.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the live CDC never applied the held commit")
	}

	// Writes to the other collections, which the catch-up will confirm
	// on the new slot without projecting them (the users), or project
	// only into the new generation (the orders and reviews, rebuilt with
	// the listings: the search store has rows of all three).
	if execSQL(t, e, `UPDATE users SET bio = 'changed during the catch-up'`) == 0 ||
		execSQL(t, e, `UPDATE orders SET updated_at = updated_at + interval '1 second'`) == 0 ||
		execSQL(t, e, `UPDATE reviews SET comment = 'edited during the catch-up'`) == 0 {
		t.Fatal("a write during the catch-up changed nothing")
	}
	pause.resume()

	// The rebuild catches up and switches; the CDC, still held, sees the
	// switch and decides whether it may leave the old slot.
	itest.Eventually(t, 120*time.Second, "the cdc to see the switch", func() (bool, error) {
		_, ok := watch.find("the projections moved to a new slot", "leaving the slot")
		return ok, nil
	})
	held.open()

	select {
	case err := <-rebuilt:
		if err != nil {
			t.Fatalf("rebuild: %v\n%s", err, pause.String())
		}
	case <-time.After(180 * time.Second):
		t.Fatalf("the rebuild did not finish:\n%s", pause.String())
	}
	if slotExists(t, e, e.Slot) {
		t.Fatalf("the old slot was not dropped:\n%s", pause.String())
	}
	ptr, err := e.Reads.LoadPointer(ctx)
	if err != nil || ptr.Collections[readstore.Listings] != "listings_g1" || ptr.Slot != e.Slot+"_r1" {
		t.Fatalf("pointer after the rebuild = %+v, %v", ptr, err)
	}
	// The live CDC now streams the new slot: once it has applied the end
	// of the WAL, every collection must match Postgres.
	waitApplied(t, e, e.CurrentLSN(t))
	requireNoDrift(t, e, "after the handover")
	if msg, _ := watch.find("the projections moved to a new slot", "leaving the slot"); !strings.Contains(msg, "moved") {
		t.Errorf("the held CDC left the old slot at once (%q)", msg)
	}
}
