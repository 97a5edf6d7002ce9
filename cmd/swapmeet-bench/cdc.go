package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// The CDC suite measures the CDC targets, each group on its own
// fresh database, Mongo database and Redis prefix:
//
//   - decode: a wal.Reader drains a WAL backlog into a sink that only
//     counts, against the absolute target of 100k row changes/s (with
//     pg_recvlogical streaming the same backlog as a yardstick for what
//     the server itself delivers);
//   - sink: the real projection.Projector drains a backlog of listing updates,
//     against single-document upserts written straight into FerretDB in the
//     same run;
//   - against the sink (cdc_vs_sink.go): a `swapmeet cdc` process on a
//     catalogue of -cdc-catalogue listings, with the sink's raw upsert rate
//     on that catalogue measured first; freshness at half that rate, the
//     highest rate whose p99 freshness is under 100 ms, and the peak RSS
//     and rate of the CDC applying one UPDATE of the whole catalogue;
//     WatchListing streams on the listings of the freshness writes time
//     them from commit to delivery, next to their freshness (watch_fresh.go);
//   - fan-out (watch_fanout.go): -watch-subscribers WatchListing streams
//     on one listing of a `swapmeet serve` process, fed by a `swapmeet cdc`
//     process: one change's delivery to all of them, and the API's memory
//     per stream.

var cdcFigures = flag.String("cdc-figures", "all", "the cdc suite's figure groups to run, comma-separated: decode, sink, vs-sink, fan-out, or all")

// The targets.
const (
	decodeTarget = 100_000.0 // row changes/s with a null sink
	sinkMinRatio = 0.8       // real sink vs raw upserts
	freshMaxP50  = 20 * time.Millisecond
	freshMaxP99  = 100 * time.Millisecond
)

// The read side of the sink figure: listings of a few sellers, in
// Postgres and as documents. The figure and its reference use this one
// size.
const (
	cdcSellers  = 50
	cdcListings = 5_000
)

func runCDC(ctx context.Context, o options) ([]row, error) {
	one := func(f func(context.Context, *env, options) (row, error)) func(context.Context, *env, options) ([]row, error) {
		return func(ctx context.Context, e *env, o options) ([]row, error) {
			got, err := f(ctx, e, o)
			if got.figure == "" {
				return nil, err
			}
			if err != nil {
				got.verdict = verdictFail
			}
			return []row{got}, err
		}
	}
	groups := []struct {
		key, name string
		run       func(context.Context, *env, options) ([]row, error)
	}{
		{"decode", decodeFigure, one(measureDecode)},
		{"sink", sinkFigure, one(measureSink)},
		{"vs-sink", "CDC against the sink", runAgainstSink},
		{"fan-out", fanOutFigure, measureFanOut},
	}
	want := map[string]bool{}
	for k := range strings.SplitSeq(*cdcFigures, ",") {
		want[strings.TrimSpace(k)] = true
	}
	var figures []figure
	for _, g := range groups {
		if want["all"] || want[g.key] {
			// Each group drops its database (and the WAL its slot holds)
			// before the next one starts.
			figures = append(figures, figure{g.name, func() ([]row, error) {
				return withEnv(ctx, func(e *env) ([]row, error) { return g.run(ctx, e, o) })
			}})
		}
	}
	return measureAll(ctx, figures)
}

// createSlot makes the env's slot at the current WAL position, so that
// what is written next becomes a backlog that a reader starts on later.
func createSlot(ctx context.Context, e *env, name string) error {
	_, err := e.PG.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, name)
	if err != nil {
		return fmt.Errorf("create slot %s: %w", name, err)
	}
	return nil
}

// firstStart gives the env's read side its slot and pointer as a first
// start of the CDC leaves them, without the CDC's one-by-one upserts of the
// documents (load them first): a CDC started next streams from here.
func firstStart(ctx context.Context, e *env) error {
	if err := createSlot(ctx, e, e.Slot); err != nil {
		return err
	}
	return e.Reads.SavePointer(ctx, readstore.InitialPointer(e.Slot))
}

// backlogConn is a connection for writing a backlog fast: without waiting
// for each commit's fsync, which only the generator would pay for.
func backlogConn(ctx context.Context, e *env) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(e.PGURL)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["synchronous_commit"] = "off"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to write the backlog: %w", err)
	}
	return conn, nil
}

func currentLSN(ctx context.Context, conn interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (pglogrepl.LSN, error) {
	var s string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&s); err != nil {
		return 0, fmt.Errorf("read the WAL position: %w", err)
	}
	return pglogrepl.ParseLSN(s)
}

// drainSink wraps the sink under test. It counts what the reader hands
// over and notes the moment the last of want row changes has been applied.
type drainSink struct {
	inner wal.Sink // nil: a null sink
	want  int64
	// count, when set, sees every row change and returns how many new
	// documents it adds to its batch's tally (the batch's own dedup state
	// is passed in).
	count func(c *wal.Change, seen map[string]bool) int

	changes, txns, batches, docs atomic.Int64
	lastEnd                      atomic.Uint64 // the end LSN of the last transaction applied

	once   sync.Once
	done   chan struct{}
	doneAt time.Time
}

func newDrainSink(inner wal.Sink, want int64) *drainSink {
	return &drainSink{inner: inner, want: want, done: make(chan struct{})}
}

// tally is a batch that counts what passes through it on the way to the
// inner sink's batch.
type tally struct {
	s                *drainSink
	inner            wal.Batch // nil for a null sink
	rows, txns, docs int64
	end              uint64
	seen             map[string]bool
}

func (b *tally) Add(c *wal.Change) {
	b.rows++
	if b.s.count != nil {
		b.docs += int64(b.s.count(c, b.seen))
	}
	if b.inner != nil {
		b.inner.Add(c)
	}
}

func (b *tally) Commit(c wal.Commit) {
	b.txns++
	b.end = uint64(c.EndLSN)
	if b.inner != nil {
		b.inner.Commit(c)
	}
}

func (b *tally) Size() int {
	if b.inner != nil {
		return b.inner.Size()
	}
	return int(b.rows)
}

func (s *drainSink) NewBatch() wal.Batch {
	b := &tally{s: s, seen: map[string]bool{}}
	if s.inner != nil {
		b.inner = s.inner.NewBatch()
	}
	return b
}

func (s *drainSink) Apply(ctx context.Context, batch wal.Batch) error {
	b := batch.(*tally)
	if s.inner != nil {
		if err := s.inner.Apply(ctx, b.inner); err != nil {
			return err
		}
	}
	s.docs.Add(b.docs)
	s.txns.Add(b.txns)
	s.batches.Add(1)
	s.lastEnd.Store(b.end)
	if s.changes.Add(b.rows) >= s.want {
		s.once.Do(func() {
			s.doneAt = time.Now()
			close(s.done)
		})
	}
	return nil
}

func (s *drainSink) Reached(ctx context.Context, lsn pglogrepl.LSN) error {
	if s.inner != nil {
		return s.inner.Reached(ctx, lsn)
	}
	return nil
}

// drain runs a wal.Reader with the production defaults on the env's slot
// until the sink has applied the whole backlog, and returns how long that
// took from the start of the reader (connecting included).
func drain(ctx context.Context, e *env, sink *drainSink, label string, within time.Duration) (time.Duration, error) {
	rd := wal.NewReader(wal.Config{ConnString: e.PGURL, Slot: e.Slot, Publication: e.Publication, Log: e.Log}, sink)
	rctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- rd.Run(rctx) }()
	stop := func() error {
		cancel()
		select {
		case err := <-stopped:
			return err
		case <-time.After(15 * time.Second):
			return errors.New("the reader did not stop within 15s")
		}
	}

	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	deadline := time.After(within)
	for {
		select {
		case <-sink.done:
			took := sink.doneAt.Sub(start)
			return took, stop()
		case <-tick.C:
			progress("%s: %d of %d row changes applied", label, sink.changes.Load(), sink.want)
		case <-deadline:
			err := stop()
			return 0, errors.Join(fmt.Errorf("%s: only %d of %d row changes applied after %s",
				label, sink.changes.Load(), sink.want, within), err)
		case <-ctx.Done():
			_ = stop()
			return 0, context.Cause(ctx)
		}
	}
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// human renders a rate with a k suffix past ten thousand.
func human(v float64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.0fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}
