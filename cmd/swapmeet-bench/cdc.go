package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/system"
)

// The cdc suite: four groups, each on its own scratch share (-cdc-figures):
// decode (null sink vs pg_recvlogical), sink (the projector vs raw Put),
// vs-sink (vs_sink.go: a `swapmeet cdc` process against raw Put), and
// fan-out (watch.go: WatchListing streams of a `swapmeet serve` process).

const (
	decodeTarget = 100_000.0 // row changes/s with a null sink
	decodeFigure = "CDC decode, null sink"
	sinkFigure   = "CDC real sink throughput"
	fanOutFigure = "WatchListing fan-out"
)

func runCDC(ctx context.Context, o options) ([]row, error) {
	groups := []struct {
		key, name string
		run       func(context.Context, *env, options) ([]row, error)
	}{
		{"decode", decodeFigure, measureDecode},
		{"sink", sinkFigure, measureSink},
		{"vs-sink", "CDC against the sink", runAgainstSink},
		{"fan-out", fanOutFigure, measureFanOut},
	}
	var figures []figure
	for _, g := range groups {
		if o.cdcFigures == "all" || strings.Contains(","+o.cdcFigures+",", ","+g.key+",") {
			// Each group drops its database (and the WAL its slot holds) before the next starts.
			figures = append(figures, figure{g.name, func() ([]row, error) {
				return withEnv(ctx, func(e *env) ([]row, error) { return g.run(ctx, e, o) })
			}})
		}
	}
	return measureAll(ctx, figures)
}

// measureDecode drains a ~300k-change backlog with a null sink, then pg_recvlogical the same.
func measureDecode(ctx context.Context, e *env, o options) (_ []row, err error) {
	defer recovered(&err)
	refSlot := e.Config.Slot + "_ref"
	createSlot(ctx, e, e.Config.Slot)
	createSlot(ctx, e, refSlot)
	conn := backlogConn(ctx, e)
	defer conn.Close(context.WithoutCancel(ctx))
	start := currentLSN(ctx, conn)
	var changes int64
	for _, sql := range []string{
		`INSERT INTO users (id, display_name) SELECT gen_random_uuid(), 'decode user ' || g FROM generate_series(1, 1000) g`,
		decodeInsert, decodeInsert,
		`UPDATE listings SET price_minor = price_minor + 1, version = version + 1, updated_at = now() WHERE id IN (SELECT id FROM listings LIMIT 100000)`,
	} {
		changes += must(conn.Exec(ctx, sql)).RowsAffected()
	}
	updateListingsOneByOne(ctx, conn, 5000)
	changes, txns := changes+5000, int64(4+5000)
	end := currentLSN(ctx, conn)
	walMB := float64(end-start) / (1 << 20)
	sink := &drainSink{}
	took := drain(ctx, e, sink, changes, 2*time.Minute)
	if sink.txns.Load() != txns || sink.changes.Load() != changes {
		check(fmt.Errorf("the reader delivered %d row changes in %d transactions; the backlog has %d in %d", sink.changes.Load(), sink.txns.Load(), changes, txns))
	}
	rate := perSecond(changes, took)
	progress("cdc decode: %d row changes, %.0f MB of WAL: %.0f changes/s (%.0f MB/s), %d batches", changes, walMB, rate, walMB/took.Seconds(), sink.batches.Load())
	t0 := time.Now()
	must(runTool(ctx, "pg_recvlogical", "postgresql-client", "--dbname", e.Config.PostgresURL, "--slot", refSlot,
		"--start", "--endpos", end.String(), "--no-loop", "--file", "/dev/null",
		"--option", "proto_version=1", "--option", "publication_names="+e.Config.Publication))
	refRate := perSecond(changes, time.Since(t0))
	return []row{atLeast(fmt.Sprintf("%s (%dk-change backlog)", decodeFigure, changes/1000),
		fmt.Sprintf("%s changes/s (%.2fx pg_recvlogical)", human(rate), rate/refRate),
		fmt.Sprintf("absolute 100k/s; pg_recvlogical %s/s", human(refRate)), rate/decodeTarget, 1)}, nil
}

const decodeInsert = `
	INSERT INTO listings (id, seller_id, title, description, category, condition, price_currency, price_minor, attributes)
	SELECT gen_random_uuid(), s.ids[1 + g % cardinality(s.ids)], 'Decode item ' || g,
	       'A listing that swapmeet-bench writes to fill the WAL.', 'bench', 'GOOD', 'EUR', 1000 + g % 9000,
	       jsonb_build_object('color', (ARRAY['red', 'blue', 'green'])[1 + g % 3], 'size', 'M')
	FROM generate_series(1, 100000) g, (SELECT array_agg(id) AS ids FROM users) s`

// updateListingsOneByOne commits n one-row updates over n listings, each its own transaction.
func updateListingsOneByOne(ctx context.Context, conn *pgx.Conn, n int) {
	must(conn.Exec(ctx, fmt.Sprintf(`
		DO $$
		DECLARE r record;
		BEGIN
			FOR r IN SELECT id FROM listings ORDER BY md5(id::text) LIMIT %d LOOP
				UPDATE listings SET price_minor = price_minor + 1, version = version + 1, updated_at = now() WHERE id = r.id;
				COMMIT;
			END LOOP;
		END $$`, n)))
}

// drainSink passes batches on to the sink under test (nil: none) and counts what it applied.
type drainSink struct {
	inner                  wal.Sink
	changes, txns, batches atomic.Int64
}

type tally struct {
	inner      wal.Batch
	rows, txns int64
}

func (b *tally) Add(c *wal.Change) {
	if b.rows++; b.inner != nil {
		b.inner.Add(c)
	}
}

func (b *tally) Commit(c wal.Commit) {
	if b.txns++; b.inner != nil {
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
	if s.inner != nil {
		return &tally{inner: s.inner.NewBatch()}
	}
	return &tally{}
}

func (s *drainSink) Apply(ctx context.Context, batch wal.Batch) error {
	b := batch.(*tally)
	if s.inner != nil {
		if err := s.inner.Apply(ctx, b.inner); err != nil {
			return err
		}
	}
	s.txns.Add(b.txns)
	s.batches.Add(1)
	s.changes.Add(b.rows)
	return nil
}

func (s *drainSink) Reached(ctx context.Context, lsn pglogrepl.LSN) error {
	if s.inner != nil {
		return s.inner.Reached(ctx, lsn)
	}
	return nil
}

// drain runs a wal.Reader until the sink has applied want row changes, and says how long it took.
func drain(ctx context.Context, e *env, sink *drainSink, want int64, within time.Duration) time.Duration {
	rd := wal.NewReader(wal.Config{ConnString: e.Config.PostgresURL, Slot: e.Config.Slot, Publication: e.Config.Publication, Log: e.log}, sink)
	rctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- rd.Run(rctx) }()
	err := poll(ctx, within, fmt.Sprintf("%d row changes applied", want), func() bool { return sink.changes.Load() >= want })
	took := time.Since(start)
	cancel()
	select {
	case rerr := <-stopped:
		check(cmp.Or(err, rerr))
	case <-time.After(15 * time.Second):
		check(cmp.Or(err, errors.New("the reader did not stop within 15s")))
	}
	return took
}

const (
	sinkMinRatio = 0.8 // real sink vs raw upserts
	sinkListings = 5_000
	sinkSellers  = 50
	sinkDrain    = 8 * time.Second // about how long the measured drain takes
	sinkPutBatch = 200             // documents a Put gets, as the projector's batches
)

// measureSink: the projector drains one-row listing updates, against Put of the same documents.
func measureSink(ctx context.Context, e *env, o options) (_ []row, err error) {
	defer recovered(&err)
	seedCatalogue(ctx, e, sinkListings, sinkSellers, "")
	ref := readstore.New(e.Mongo.Database(e.Config.MongoDB + "_ref"))
	ref.WriteConcurrency = e.Reads.WriteConcurrency
	e.OnClose(func() error { return ref.DB().Drop(context.Background()) })
	for _, s := range []*readstore.Model{e.Reads, ref} {
		bulkLoadListings(ctx, s, e.PG, readstore.Listings, sinkListings)
	}
	docs := listingDocs(ctx, e.PG, listingIDs(ctx, e.PG, `SELECT id FROM listings ORDER BY id`), 1)
	createSlot(ctx, e, e.Config.Slot) // every commit from here on is in the backlog
	refN, refTook := putListings(ctx, ref, docs, min(o.duration, sinkDrain), false, func(doc *readstore.Listing, now time.Time) {
		doc.Price.Minor++
		doc.Version++
		doc.UpdatedAt, doc.LSN = now, 1
	})
	refRate := perSecond(int64(refN), refTook)
	n := min(sinkListings, max(100, int(refRate*sinkDrain.Seconds())))
	conn := backlogConn(ctx, e)
	updateListingsOneByOne(ctx, conn, n)
	conn.Close(context.WithoutCancel(ctx))
	// Each listing once: n documents; the sellers' profiles are not counted.
	sink := &drainSink{inner: system.NewProjector(e.Config, e.Clients(), e.log)}
	rate := perSecond(int64(n), drain(ctx, e, sink, int64(n), 5*time.Minute))
	progress("cdc sink: %d transactions in %d batches: %.0f listing documents/s; reference: %d upserts, %d at a time: %.0f/s",
		sink.txns.Load(), sink.batches.Load(), rate, refN, ref.WriteConcurrency, refRate)
	r := atLeast(fmt.Sprintf("%s (listing docs, %dk in collection)", sinkFigure, sinkListings/1000),
		fmt.Sprintf("%.0f docs/s (+ seller profile upserts, uncounted)", rate),
		fmt.Sprintf("FerretDB raw upserts %.0f docs/s", refRate), rate/refRate, sinkMinRatio)
	if err := verifyListingVersions(ctx, e.Reads, e.PG); err != nil {
		r.verdict = verdictFail
		return []row{r}, err
	}
	return []row{r}, nil
}

// putListings replaces docs with Put, sinkPutBatch at a time, for d (round and round with cycle).
func putListings(ctx context.Context, s *readstore.Model, docs []readstore.Listing, d time.Duration, cycle bool, edit func(doc *readstore.Listing, now time.Time)) (int, time.Duration) {
	return writeListings(ctx, docs, d, cycle, edit, func(chunk []readstore.Listing) error { return putChunk(ctx, s, chunk) })
}

// writeListings edits docs and hands them to write, sinkPutBatch at a
// time, for d (round and round with cycle).
func writeListings(ctx context.Context, docs []readstore.Listing, d time.Duration, cycle bool, edit func(doc *readstore.Listing, now time.Time), write func([]readstore.Listing) error) (int, time.Duration) {
	start := time.Now()
	n := 0
	chunk := make([]readstore.Listing, 0, sinkPutBatch)
	for i := 0; time.Since(start) < d; i += sinkPutBatch {
		if i >= len(docs) {
			if !cycle {
				break
			}
			i = 0
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		chunk = append(chunk[:0], docs[i:min(i+sinkPutBatch, len(docs))]...)
		for k := range chunk {
			edit(&chunk[k], now)
		}
		check(write(chunk))
		n += len(chunk)
	}
	return n, time.Since(start)
}

// putChunk replaces the documents of chunk in the read store.
func putChunk(ctx context.Context, s *readstore.Model, chunk []readstore.Listing) error {
	ids, put := make([]string, len(chunk)), make([]any, len(chunk))
	for k, doc := range chunk {
		ids[k], put[k] = doc.ID, doc
	}
	return s.Put(ctx, readstore.Listings, ids, put)
}

// verifyListingVersions checks that 50 updated listings' documents hold the row's version.
func verifyListingVersions(ctx context.Context, s *readstore.Model, pg *pgxpool.Pool) error {
	type want struct {
		ID      string
		Version int64
	}
	rows, _ := pg.Query(ctx, `SELECT id::text, version FROM listings WHERE version > 1 ORDER BY random() LIMIT 50`)
	sample, err := pgx.CollectRows(rows, pgx.RowToStructByPos[want])
	if err != nil || len(sample) == 0 {
		return fmt.Errorf("sample updated listings: %d, %v", len(sample), err)
	}
	for _, w := range sample {
		got, err := readstore.Find[readstore.Listing](ctx, s, readstore.Listings, w.ID)
		if err != nil {
			return fmt.Errorf("check listing %s in mongo: %w", w.ID, err)
		}
		if got.Version != w.Version || got.LSN == 0 {
			return fmt.Errorf("listing %s in mongo has version %d and lsn %d; postgres has version %d", w.ID, got.Version, got.LSN, w.Version)
		}
	}
	return nil
}
