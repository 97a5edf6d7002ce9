package wal_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// commits is a Batch that remembers the transactions it was given.
type commits struct{ list []wal.Commit }

func (c *commits) Add(*wal.Change)     {}
func (c *commits) Commit(x wal.Commit) { c.list = append(c.list, x) }
func (c *commits) Size() int           { return len(c.list) }

// gatedSink records each batch's transactions; while held, Apply blocks.
type gatedSink struct {
	entered chan struct{} // receives once per held Apply
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	batches [][]wal.Commit
	// during, if set, runs inside Apply once the batch is recorded.
	during func(b []wal.Commit)
}

func newGatedSink() *gatedSink { return &gatedSink{entered: make(chan struct{}, 16)} }

func (s *gatedSink) NewBatch() wal.Batch { return &commits{} }

func (s *gatedSink) Apply(ctx context.Context, b wal.Batch) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.entered <- struct{}{}
		<-gate // the reader's context for Apply is never cancelled
	}
	list := b.(*commits).list
	s.mu.Lock()
	s.batches = append(s.batches, list)
	during := s.during
	s.mu.Unlock()
	if during != nil {
		during(list)
	}
	return nil
}

func (s *gatedSink) Reached(context.Context, pglogrepl.LSN) error { return nil }

// hold makes the next Apply calls block until release.
func (s *gatedSink) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *gatedSink) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *gatedSink) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, b := range s.batches {
		out = append(out, len(b))
	}
	return out
}

// lastEnd is the end of the last transaction applied, 0 if none.
func (s *gatedSink) lastEnd() pglogrepl.LSN {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.batches) == 0 {
		return 0
	}
	b := s.batches[len(s.batches)-1]
	return b[len(b)-1].EndLSN
}

// xidsSeen counts how often each transaction reached the sink.
func (s *gatedSink) xidsSeen() map[uint32]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[uint32]int{}
	for _, b := range s.batches {
		for _, c := range b {
			seen[c.Xid]++
		}
	}
	return seen
}

// startReader runs a reader on e's slot (creating it) until the test ends.
func startReader(t *testing.T, e *itest.Env, cfg wal.Config, sink wal.Sink) *wal.Reader {
	t.Helper()
	return startReaderLogged(t, e, cfg, sink, nil)
}

// startReaderLogged is startReader, logging into logs when it is not nil.
// A gated sink is released as the test ends, before the reader stops.
func startReaderLogged(t *testing.T, e *itest.Env, cfg wal.Config, sink wal.Sink, logs *itest.Output) *wal.Reader {
	t.Helper()
	r := e.StartReader(t, cfg, sink, logs)
	if g, ok := sink.(*gatedSink); ok {
		t.Cleanup(g.release) // cleanups run last first: before the reader's
	}
	return r
}

// TestBacklogIsAppliedInOneBatch: commits that queue up while the sink
// is busy are applied together, however many keepalives the server sends
// between them. (It sends one whenever it catches up with the WAL, which
// under load is after every transaction: a reader that cut its batch at
// each keepalive applied one commit per round trip to the read store.)
func TestBacklogIsAppliedInOneBatch(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	sink := newGatedSink()
	sink.hold()
	startReader(t, e, wal.Config{}, sink)

	id := uuid.New()
	if _, err := e.PG.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, 'first')`, id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sink.entered:
	case <-time.After(2 * time.Minute): // a loaded machine decodes slowly; this test is about batching
		t.Fatal("the first commit never reached the sink")
	}
	const backlog = 20
	for i := range backlog {
		if _, err := e.PG.Exec(ctx, `UPDATE users SET bio = $2 WHERE id = $1`, id, string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	// The reader is still inside the first Apply; every commit since
	// reaches its socket, each followed by a keepalive. A batch takes what
	// the socket holds when the reader looks, so wait until the server has
	// sent the whole backlog: only the reader itself can split it then.
	// (The walsender's progress is visible to the superuser alone.)
	su := e.Superuser(t)
	var last string
	if err := su.QueryRow(ctx, `SELECT pg_current_wal_flush_lsn()::text`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, time.Minute, "the server to send the backlog", func() (bool, error) {
		var sent bool
		err := su.QueryRow(ctx, `SELECT coalesce(bool_or(r.sent_lsn >= $2::pg_lsn), false)
			FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid
			WHERE s.slot_name = $1`, e.Slot, last).Scan(&sent)
		return sent, err
	})
	sink.release()
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

// walsenderPID is the pid of the walsender streaming the slot, 0 if none.
func walsenderPID(ctx context.Context, e *itest.Env) (int, error) {
	var pid int
	err := e.PG.QueryRow(ctx, `SELECT coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = $1`, e.Slot).Scan(&pid)
	return pid, err
}

func confirmedLSN(ctx context.Context, e *itest.Env) (pglogrepl.LSN, error) {
	var s string
	err := e.PG.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = $1`, e.Slot).Scan(&s)
	if err != nil {
		return 0, err
	}
	return pglogrepl.ParseLSN(s)
}

// TestLinkStaysUpWhileTheSinkIsHeld: a sink that takes three times the
// server's wal_sender_timeout to apply a batch does not cost the
// replication connection. The walsender stays the same process throughout,
// and the batch is acknowledged once applied.
func TestLinkStaysUpWhileTheSinkIsHeld(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	const walSenderTimeout = 3 * time.Second
	logs := &itest.Output{}
	cfg := wal.Config{ConnString: e.PGURL + "&options=-c%20wal_sender_timeout%3D3s"}
	sink := newGatedSink()
	sink.hold()
	r := startReaderLogged(t, e, cfg, sink, logs)

	if _, err := e.PG.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, 'held')`, uuid.New()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sink.entered:
	case <-time.After(60 * time.Second):
		t.Fatalf("the commit never reached the sink; reader log:\n%s", logs)
	}
	pid, err := walsenderPID(ctx, e)
	if err != nil || pid == 0 {
		t.Fatalf("no walsender while the sink is held: pid %d, %v", pid, err)
	}
	// The scenario is a sink that is slow for a given time: hold it that
	// long, checking the walsender all along.
	held := time.Now()
	for time.Since(held) < 3*walSenderTimeout {
		now, err := walsenderPID(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if now != pid {
			t.Fatalf("after %s with the sink held, the walsender is pid %d, was %d: the server dropped the link; reader log:\n%s",
				time.Since(held).Round(time.Millisecond), now, pid, logs)
		}
		time.Sleep(50 * time.Millisecond) // polling interval of the check, not synchronisation
	}
	sink.release()
	var end pglogrepl.LSN
	itest.Eventually(t, 30*time.Second, "the held batch to be applied", func() (bool, error) {
		end = sink.lastEnd()
		return end > 0 && r.Applied() >= end, nil
	})
	itest.Eventually(t, 30*time.Second, "the held batch to be acknowledged", func() (bool, error) {
		c, err := confirmedLSN(ctx, e)
		return c >= end, err
	})
	if now, _ := walsenderPID(ctx, e); now != pid {
		t.Fatalf("the walsender changed from %d to %d; reader log:\n%s", pid, now, logs)
	}
}

// TestReconnectResumesAtApplied: when the link drops after a batch was
// applied but before its acknowledgement reached the server, the reader
// resumes after what it applied: the server does not re-send it.
func TestReconnectResumesAtApplied(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	sink := newGatedSink()
	var once sync.Once
	killed := make(chan struct{})
	sink.during = func([]wal.Commit) {
		// The batch is in the read store; the link dies before the
		// reader can report it.
		once.Do(func() {
			if _, err := e.PG.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1`, e.Slot); err != nil {
				t.Errorf("terminate walsender: %v", err)
			}
			close(killed)
		})
	}
	startReader(t, e, wal.Config{}, sink)
	if _, err := e.PG.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, 'once')`, uuid.New()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-killed:
	case <-time.After(30 * time.Second):
		t.Fatal("the commit never reached the sink")
	}
	// A second commit proves the reader streams again; by the time it
	// arrives, a re-sent first commit would have arrived before it.
	if _, err := e.PG.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, 'after')`, uuid.New()); err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, 60*time.Second, "the second commit after the reconnect", func() (bool, error) {
		return len(sink.xidsSeen()) == 2, nil
	})
	for xid, n := range sink.xidsSeen() {
		if n != 1 {
			t.Fatalf("transaction %d was applied %d times: the reader resumed before what it had applied", xid, n)
		}
	}
}

// TestMissingPublicationIsNotALostSlot: a setup error is reported as such,
// not as a lost slot that would send the operator to rebuild.
func TestMissingPublicationIsNotALostSlot(t *testing.T) {
	e := itest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := wal.NewReader(wal.Config{ConnString: e.PGURL, Slot: e.Slot, Publication: "no_such_publication",
		CreateSlot: true, Log: e.Log, MaxBackoff: 200 * time.Millisecond}, newGatedSink())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	// The server looks the publication up when it decodes a change.
	itest.Eventually(t, 30*time.Second, "the slot to exist", func() (bool, error) {
		var n int
		err := e.PG.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, e.Slot).Scan(&n)
		return n == 1, err
	})
	if _, err := e.PG.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, 'x')`, uuid.New()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if errors.Is(err, wal.ErrSlotLost) || !errors.Is(err, wal.ErrSetup) {
			t.Fatalf("got %v, want ErrSetup and not ErrSlotLost", err)
		}
	case <-ctx.Done():
		t.Fatal("the reader kept retrying a missing publication")
	}
}

// TestPositionPastUnflushedWALIsReached: a write's consistency token is
// the WAL insert position read after its COMMIT, which also covers what
// other sessions inserted in between without committing (a transaction
// still open, a page pruned by a read). Postgres flushes such WAL only at
// the next commit, and the walsender reads only flushed WAL, so on a
// quiet server the token was reached only when some unrelated
// transaction committed: reads with the token waited out their bound.
func TestPositionPastUnflushedWALIsReached(t *testing.T) {
	e := itest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := startReader(t, e, wal.Config{}, newGatedSink())

	// The write, then another session's write that stays open: its WAL
	// is inserted, not flushed. (Another commit on the server flushes it;
	// try again then.)
	var token uint64
	for attempt := 0; ; attempt++ {
		if _, err := e.PG.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, 'the write')`, uuid.New()); err != nil {
			t.Fatal(err)
		}
		open, err := e.PG.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer open.Rollback(context.Background())
		if _, err := open.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, 'not committed')`, uuid.New()); err != nil {
			t.Fatal(err)
		}
		var flushed uint64
		if err := e.PG.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::int8, (pg_current_wal_flush_lsn() - '0/0')::int8`).Scan(&token, &flushed); err != nil {
			t.Fatal(err)
		}
		if token > flushed {
			break
		}
		if attempt == 20 {
			t.Skipf("other commits flushed the WAL every time (insert %X, flush %X): nothing to show", token, flushed)
		}
	}
	itest.Eventually(t, 5*time.Second, "the reader to reach the insert position while a session holds unflushed WAL", func() (bool, error) {
		return uint64(r.Applied()) >= token, nil
	})
}

// TestACommitIsAppliedWithoutWaitingForMore: a batch closes when nothing
// more is buffered, not on a timer. With the fallback timers (used only
// where the socket cannot be inspected) set to an hour, a lone commit is
// still applied at once: well before the status update, a third of
// wal_sender_timeout, whose wait is the only other one that ends.
func TestACommitIsAppliedWithoutWaitingForMore(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	var timeout string
	if err := e.PG.QueryRow(ctx, `SELECT setting FROM pg_settings WHERE name = 'wal_sender_timeout'`).Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.Atoi(timeout)
	if err != nil || ms < 3000 {
		t.Fatalf("wal_sender_timeout %q ms: the test needs one of at least 3s", timeout)
	}
	within := time.Duration(ms) * time.Millisecond / 6 // half the status interval
	sink := newGatedSink()
	startReader(t, e, wal.Config{Linger: time.Hour, MaxBatchAge: time.Hour, StatusInterval: time.Hour}, sink)
	for i := range 3 {
		if _, err := e.PG.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, 'lone')`, uuid.New()); err != nil {
			t.Fatal(err)
		}
		itest.Eventually(t, within, "the lone commit to be applied", func() (bool, error) {
			n := 0
			for _, b := range sink.sizes() {
				n += b
			}
			return n == i+1, nil
		})
	}
}
