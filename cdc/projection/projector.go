// Package projection keeps the read side in step with what the WAL says
// changed: its Projector is the wal.Sink that rebuilds the MongoDB
// documents a batch of transactions touches from Postgres and tombstones
// their Redis cache keys. Collection gives the tools that read Postgres
// themselves (rebuild, verify) the same documents.
package projection

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/roundtrip"
	"github.com/swapmeet/swapmeet/internal/search"
)

// Projector is the wal.Sink that maintains the MongoDB documents and the
// Redis cache. It does not replay row images: for each batch of transactions it
// collects the ids of the documents the changes touch and re-reads their
// current denormalized shape from Postgres. A document is therefore always
// a whole, current view; replays and restarts converge; and fan-out (a
// rename reaching every copy of the name) is a question of which ids to
// re-read.
//
// A batch is applied in pages of at most projectBatch documents, each read
// in its own short snapshot and written at once, by a few workers at a
// time: memory stays bounded and no Postgres transaction stays open while
// the read store is slow, whatever the batch's size.
type Projector struct {
	// targets, if set, maps the collections to maintain to the physical
	// collections to write (a generation being built); others are skipped.
	// When nil, every collection is written under its logical name, which
	// the read store resolves through the live pointer.
	targets map[string]string
	// shadow marks a projector that feeds a generation being built: it
	// leaves the live cache and the live applied position alone.
	shadow bool

	pg      *pgxpool.Pool
	reads   *readstore.Model
	cache   *cache.Cache
	rdb     redis.UniversalClient
	keys    cache.AppliedKeys
	log     *slog.Logger
	metrics Metrics
	feed    *FeedWriter   // nil: no change feed
	search  *search.Store // nil: no search rows
	// searchShadow is the search generation a rebuild's catch-up feeds.
	searchShadow int64
	// searchLive caches the search store's live generation while the
	// projections pointer names none (see searchGeneration).
	searchLive *atomic.Int64

	// Workers is how many pages are read and written at once.
	Workers int
	// SpillDocs bounds each id set of a batch; past it, the collection is
	// rebuilt whole (see touched).
	SpillDocs int
	// ProgressEvery is how often a long batch logs its progress.
	ProgressEvery time.Duration

	// base is added to every WAL position to make the read side's
	// (consistency.Followed.Base): 0 on the first history.
	base uint64
}

// SetBase sets the base of the read side's positions, from the projections
// pointer's history, before anything is applied with it.
func (p *Projector) SetBase(base uint64) { p.base = base }

// Position is the read side's position of WAL position lsn.
func (p *Projector) Position(lsn pglogrepl.LSN) uint64 { return p.base + uint64(lsn) }

// AppliedPosition is the read side's applied position, as Redis holds it.
func (p *Projector) AppliedPosition(ctx context.Context) (uint64, error) {
	lsn, _, err := cache.ReadApplied(ctx, p.rdb, p.keys)
	return lsn, err
}

// NewProjector returns a Projector that re-reads Postgres through pg.
func NewProjector(pg *pgxpool.Pool, reads *readstore.Model, c *cache.Cache, rdb redis.UniversalClient, keys cache.AppliedKeys, log *slog.Logger) *Projector {
	return &Projector{pg: pg, reads: reads, cache: c, rdb: rdb, keys: keys, log: log, searchLive: new(atomic.Int64),
		Workers: 2, SpillDocs: 100_000, ProgressEvery: 5 * time.Second}
}

// Metrics receives how far the batch being applied has got. The reader's
// *wal.Metrics is one: the batch series are registered with the reader's.
type Metrics interface {
	BatchProgress(done, total int64)
	// FannedOut counts documents of collection rebuilt because a row
	// they embed changed (a seller's rename or rating, a listing's media).
	FannedOut(collection string, n int)
	// StageReached records that the batch whose last transaction
	// committed at lastCommit reached stage at the moment at
	// (wal.StageWritten and later, in order: the reader records the
	// stages before).
	StageReached(stage wal.Stage, lastCommit, at time.Time)
	// RoundTrips records the round trips an applied batch made to each
	// store.
	RoundTrips(c *roundtrip.Counts)
}

// WithMetrics makes the projector report batch progress on m.
func (p *Projector) WithMetrics(m Metrics) *Projector {
	p.metrics = m
	return p
}

// progress reports how far the batch being applied has got, if anyone
// listens.
func (p *Projector) progress(done, total int64) {
	if p.metrics != nil {
		p.metrics.BatchProgress(done, total)
	}
}

// reached records that the batch reached a stage at a moment, if anyone
// listens.
func (p *Projector) reached(stage wal.Stage, lastCommit, at time.Time) {
	if p.metrics != nil {
		p.metrics.StageReached(stage, lastCommit, at)
	}
}

// NewBatch implements wal.Sink.
func (p *Projector) NewBatch() wal.Batch {
	t := newTouched(max(1, p.SpillDocs))
	t.base = p.base
	if p.search != nil && !p.shadow {
		t.hist = &historyLog{store: p.search, base: int64(p.base)}
	}
	return t
}

// projectBatch bounds one Postgres read and one round of Mongo writes.
const projectBatch = 200

// Apply rebuilds every document the batch touches, tombstoning the cache
// entries of each page after writing it, then announces the batch's end
// LSN. Only after all of it may the reader acknowledge the batch.
//
// It runs in a span, cdc.apply, in the trace of the write the batch
// carries (see startApply), and records the stages the batch reaches
// (wal.Stage) on the projector's Metrics.
func (p *Projector) Apply(ctx context.Context, b wal.Batch) (err error) {
	t, ok := b.(*touched)
	if !ok {
		return fmt.Errorf("projector: batch of type %T is not its own", b)
	}
	lastCommit := t.lastCommit
	if len(t.ends) == 0 {
		return nil
	}
	end := t.end()
	ctx, span := startApply(ctx, t, end)
	ctx, trips := roundtrip.With(ctx)
	var documents int64
	defer func() {
		endApply(span, documents, err)
		if err == nil && p.metrics != nil {
			p.metrics.RoundTrips(trips)
		}
	}()
	run, err := p.newRun(ctx, t, "batch ending "+end.String())
	if err != nil {
		return err
	}
	p.plan(run, t)
	err = run.wait()
	documents = run.done.Load()
	if err != nil {
		return err
	}
	// The batch ends with two independent writes and the announcement
	// after both: the search store's position and the history (one round
	// trip), and one Redis pipeline with the last pages'
	// tombstones (see run.write), the page epoch and the change feed. The
	// stages are recorded in order, each when the batch has reached it and
	// every stage before: written once the documents, search rows,
	// position and history are; evicted once the tombstones and the page
	// epoch are; fed once the feed is.
	var g errgroup.Group
	var writtenAt, tailAt time.Time
	g.Go(func() error {
		err := run.finishSearch(ctx, t.hist)
		writtenAt = time.Now()
		return err
	})
	if !p.shadow {
		g.Go(func() error {
			err := run.tail(ctx, uint64(t.ends[0])-1, uint64(end))
			tailAt = time.Now()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	p.reached(wal.StageWritten, lastCommit, writtenAt)
	if p.shadow {
		return nil
	}
	evictedAt := latest(writtenAt, tailAt)
	p.reached(wal.StageEvicted, lastCommit, evictedAt)
	if run.changes != nil {
		p.reached(wal.StageFed, lastCommit, evictedAt)
	}
	if err := cache.Publish(ctx, p.rdb, p.keys, uint64(end), run.evicted); err != nil {
		return fmt.Errorf("publish applied position: %w", err)
	}
	p.reached(wal.StageAnnounced, lastCommit, time.Now())
	return nil
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// tail writes, in one Redis pipeline, the tombstones the pages left to
// it, the listings page epoch if a listing changed, and the batch's
// changes to the feed (from and end bound its positions); then trims the
// feed if that is due.
func (r *run) tail(ctx context.Context, from, end uint64) error {
	p := r.p
	err := p.cache.EvictAnd(ctx, r.deferred, func(pipe redis.Pipeliner) func() error {
		var checks []func() error
		if r.listings.Load() {
			checks = append(checks, p.cache.BumpPageEpochIn(ctx, pipe, readstore.Listings, &r.evicted))
		}
		if r.changes != nil {
			checks = append(checks, p.feed.queue(ctx, pipe, r.changes, from, end, audit.TraceParent(ctx)))
		}
		return func() error {
			for _, c := range checks {
				if err := c(); err != nil {
					return err
				}
			}
			return nil
		}
	})
	if err != nil {
		return err
	}
	r.noteEvicted(r.deferred)
	if r.changes != nil {
		return p.feed.trim(ctx, p, end)
	}
	return nil
}

// plan queues the batch's pages: each touched set, a full pass for each
// spilled collection, and the fan-outs to documents that embed a renamed
// user or a listing's changed images.
func (p *Projector) plan(run *run, t *touched) {
	for _, proj := range projections {
		if p.target(proj.collection) == "" {
			continue
		}
		if t.full[proj.index] {
			run.fullPass(proj)
			continue
		}
		run.set(proj, t.docs[proj.index])
	}
	type fan struct {
		proj Collection
		page func(ctx context.Context, q *sqlc.Queries, key, after uuid.UUID, n int32) ([]uuid.UUID, error)
	}
	byUser := []fan{
		{For(readstore.Listings), func(ctx context.Context, q *sqlc.Queries, u, after uuid.UUID, n int32) ([]uuid.UUID, error) {
			return q.PageListingIDsBySeller(ctx, sqlc.PageListingIDsBySellerParams{UserID: u, After: after, Batch: n})
		}},
		{For(readstore.Orders), func(ctx context.Context, q *sqlc.Queries, u, after uuid.UUID, n int32) ([]uuid.UUID, error) {
			return q.PageOrderIDsByBuyer(ctx, sqlc.PageOrderIDsByBuyerParams{UserID: u, After: after, Batch: n})
		}},
		{For(readstore.Orders), func(ctx context.Context, q *sqlc.Queries, u, after uuid.UUID, n int32) ([]uuid.UUID, error) {
			return q.PageOrderIDsBySeller(ctx, sqlc.PageOrderIDsBySellerParams{UserID: u, After: after, Batch: n})
		}},
		{For(readstore.Reviews), func(ctx context.Context, q *sqlc.Queries, u, after uuid.UUID, n int32) ([]uuid.UUID, error) {
			return q.PageReviewIDsByAuthor(ctx, sqlc.PageReviewIDsByAuthorParams{UserID: u, After: after, Batch: n})
		}},
	}
	for _, f := range byUser {
		if p.target(f.proj.collection) == "" || t.full[f.proj.index] || len(t.summaries) == 0 {
			continue
		}
		run.fanOut(f.proj, t.summaries, t.docs[f.proj.index], f.page)
	}
	orders := For(readstore.Orders)
	if p.target(orders.collection) != "" && !t.full[orders.index] && len(t.mediaListings) > 0 {
		run.fanOut(orders, t.mediaListings, t.docs[orders.index], func(ctx context.Context, q *sqlc.Queries, l, after uuid.UUID, n int32) ([]uuid.UUID, error) {
			return q.PageOrderIDsByListing(ctx, sqlc.PageOrderIDsByListingParams{ListingID: l, After: after, Batch: n})
		})
	}
}

// Resync projects every document from the current state of Postgres, as
// if every table had been truncated and refilled.
func (p *Projector) Resync(ctx context.Context) error {
	end, err := sqlc.New(p.pg).CurrentPosition(ctx)
	if err != nil {
		return err
	}
	lsn := p.Position(pglogrepl.LSN(end.Lsn))
	t := newTouched(1)
	t.Commit(wal.Commit{EndLSN: pglogrepl.LSN(lsn)})
	for i := range t.full {
		t.spillDocs(i)
	}
	t.spillSummaries()
	run, err := p.newRun(ctx, t, "full pass")
	if err != nil {
		return err
	}
	p.plan(run, t)
	if err := run.wait(); err != nil {
		return err
	}
	if err := run.finishSearch(ctx, nil); err != nil {
		return err
	}
	if p.shadow {
		return nil
	}
	if err := p.cache.Evict(ctx, run.deferred...); err != nil {
		return err
	}
	if run.changes != nil {
		run.changes.all = [2]bool{true, true}
		if err := p.feed.publish(ctx, p, run.changes, uint64(lsn), uint64(lsn), ""); err != nil {
			return err
		}
	}
	// Every document may have changed: processes drop what they hold.
	all := cache.Evicted{All: true}
	if err := p.cache.BumpPageEpoch(ctx, readstore.Listings, &all); err != nil {
		return err
	}
	return cache.Publish(ctx, p.rdb, p.keys, uint64(lsn), all)
}

// run is one batch being applied: producers queue pages, workers read and
// write them.
type run struct {
	p     *Projector
	t     *touched
	what  string
	g     *errgroup.Group
	ctx   context.Context
	pages chan page
	prods errgroup.Group // the producers; pages closes when they are done
	start time.Time

	total, done atomic.Int64
	stop        chan struct{}
	changes     *changes // for the feed; nil without one

	mu      sync.Mutex
	evicted cache.Evicted // the cache keys tombstoned, for the announcement
	// listings is set once any listing document is written or deleted,
	// directly or by a fan-out (a seller's rename): search pages embed them.
	listings atomic.Bool
	// deferred are tombstones the pages left to the batch's tail
	// pipeline (run.write); guarded by mu.
	deferred []cache.Eviction
	// visible is set once a snapshot saw every transaction of the batch:
	// every later one sees them too. Each page reads in a snapshot it
	// checks itself (at no cost: readVisible); reads outside a page (the
	// fan-outs' and full passes' listings of ids) wait for it first
	// (awaitVisible).
	visibleMu sync.Mutex
	visible   bool
	// searchGen is the search generation this run writes (0: none), and
	// searched is set once it wrote a page there.
	searchGen int64
	searched  atomic.Bool
}

type page struct {
	proj Collection
	ids  []uuid.UUID
}

func (p *Projector) newRun(ctx context.Context, t *touched, what string) (*run, error) {
	// One generation for the whole batch, resolved before any page.
	sg, err := p.searchGeneration(ctx)
	if err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	r := &run{p: p, t: t, what: what, g: g, ctx: gctx, pages: make(chan page, 2*max(1, p.Workers)), start: time.Now(), stop: make(chan struct{}),
		searchGen: sg}
	if p.feed != nil && !p.shadow {
		r.changes = &changes{max: max(1, p.feed.MaxChanges)}
	}
	for range max(1, p.Workers) {
		g.Go(func() error {
			for pg := range r.pages {
				if err := r.apply(pg); err != nil {
					return err
				}
			}
			return nil
		})
	}
	go r.report()
	return r, nil
}

// produce runs a producer of pages.
func (r *run) produce(fn func() error) { r.prods.Go(fn) }

// wait closes the queue once every producer is done and waits for the
// workers.
func (r *run) wait() error {
	perr := r.prods.Wait()
	close(r.pages)
	err := r.g.Wait()
	close(r.stop)
	r.p.progress(0, 0)
	if err == nil {
		err = perr // a worker's error is the cause of the producers'
	}
	if err == nil && r.done.Load() >= 10*projectBatch {
		r.p.log.Info("applied", "what", r.what, "documents", r.done.Load(), "took", time.Since(r.start).Round(time.Millisecond))
	}
	return err
}

// awaitVisible returns once a snapshot has seen every transaction of the
// batch, checking one itself unless a page already has.
func (r *run) awaitVisible() error {
	r.visibleMu.Lock()
	defer r.visibleMu.Unlock()
	if r.visible || len(r.t.xids) == 0 {
		return nil
	}
	if err := readVisible(r.ctx, r.p.pg, r.t.xids, func(*sqlc.Queries) error { return nil }); err != nil {
		return err
	}
	r.visible = true
	return nil
}

func (r *run) markVisible() {
	r.visibleMu.Lock()
	r.visible = true
	r.visibleMu.Unlock()
}

func (r *run) send(pg page) error {
	r.total.Add(int64(len(pg.ids)))
	select {
	case r.pages <- pg:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// set queues the pages of a touched set.
func (r *run) set(proj Collection, s idSet) {
	if len(s) == 0 {
		return
	}
	r.produce(func() error {
		ids := make([]uuid.UUID, 0, min(len(s), projectBatch))
		for id := range s {
			ids = append(ids, id)
			if len(ids) == projectBatch {
				if err := r.send(page{proj, ids}); err != nil {
					return err
				}
				ids = make([]uuid.UUID, 0, projectBatch)
			}
		}
		if len(ids) > 0 {
			return r.send(page{proj, ids})
		}
		return nil
	})
}

// fanOut queues the documents that embed each of keys, a page at a time
// in id order, leaving out those the batch touches directly (they are
// rebuilt once, with the same stamp).
func (r *run) fanOut(proj Collection, keys idSet, direct idSet, next func(context.Context, *sqlc.Queries, uuid.UUID, uuid.UUID, int32) ([]uuid.UUID, error)) {
	r.produce(func() error {
		if err := r.awaitVisible(); err != nil {
			return err
		}
		q := sqlc.New(r.p.pg)
		for key := range keys {
			after := uuid.Nil
			for {
				ids, err := next(r.ctx, q, key, after, projectBatch)
				if err != nil {
					return fmt.Errorf("fan out to %s: %w", proj.collection, err)
				}
				if len(ids) == 0 {
					break
				}
				after = ids[len(ids)-1]
				keep := ids[:0]
				for _, id := range ids {
					if _, ok := direct[id]; !ok {
						keep = append(keep, id)
					}
				}
				if len(keep) > 0 {
					if r.p.metrics != nil {
						r.p.metrics.FannedOut(proj.collection, len(keep))
					}
					if err := r.send(page{proj, keep}); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// fullPass queues every row of a collection's source, then removes the
// documents whose rows are gone.
func (r *run) fullPass(proj Collection) {
	r.produce(func() error {
		if err := r.awaitVisible(); err != nil {
			return err
		}
		q := sqlc.New(r.p.pg)
		after := uuid.Nil
		for {
			ids, err := proj.all(r.ctx, q, after, projectBatch)
			if err != nil {
				return fmt.Errorf("list %s: %w", proj.collection, err)
			}
			if len(ids) == 0 {
				break
			}
			after = ids[len(ids)-1]
			if err := r.send(page{proj, ids}); err != nil {
				return err
			}
		}
		return r.sweep(proj)
	})
}

// sweep deletes the documents of a collection whose rows no longer exist,
// reading the store's ids in pages so that memory stays bounded.
func (r *run) sweep(proj Collection) error {
	physical := r.p.target(proj.collection)
	q := sqlc.New(r.p.pg)
	end := uint64(r.t.end())
	return r.p.reads.EachID(r.ctx, physical, 1000, func(stored []string) error {
		ids := make([]uuid.UUID, 0, len(stored))
		for _, s := range stored {
			if id, err := uuid.Parse(s); err == nil {
				ids = append(ids, id)
			}
		}
		exist, err := proj.exist(q, r.ctx, ids)
		if err != nil {
			return fmt.Errorf("check %s rows: %w", proj.collection, err)
		}
		live := make(map[uuid.UUID]bool, len(exist))
		for _, id := range exist {
			live[id] = true
		}
		w := write{collection: physical}
		var gone []uuid.UUID
		for _, id := range ids {
			if !live[id] {
				gone = append(gone, id)
				w.gone = append(w.gone, id.String())
				w.evictions = r.p.eviction(w.evictions, proj, id.String(), end)
			}
		}
		if err := r.writeBoth(w, proj.collection, nil); err != nil {
			return err
		}
		r.record(proj, gone, nil)
		return nil
	})
}

// apply rebuilds one page in its own snapshot, which sees the batch's
// transactions, and writes it: replacements
// for documents that exist, deletions for those whose rows are gone, and
// tombstones for their cache entries.
func (r *run) apply(pg page) error {
	var docs map[uuid.UUID]any
	err := readVisible(r.ctx, r.p.pg, r.t.xids, func(q *sqlc.Queries) error {
		var err error
		docs, err = pg.proj.build(r.ctx, q, pg.ids, r.t)
		return err
	})
	if err != nil {
		return err
	}
	r.markVisible()
	w := write{collection: r.p.target(pg.proj.collection)}
	for _, id := range pg.ids {
		s := id.String()
		if d, ok := docs[id]; ok {
			w.ids = append(w.ids, s)
			w.docs = append(w.docs, d)
			w.evictions = r.p.eviction(w.evictions, pg.proj, s, uint64(lsnOf(d)))
		} else {
			w.gone = append(w.gone, s)
			w.evictions = r.p.eviction(w.evictions, pg.proj, s, uint64(r.t.end()))
		}
	}
	if err := r.writeBoth(w, pg.proj.collection, w.docs); err != nil {
		return err
	}
	r.record(pg.proj, pg.ids, docs)
	r.done.Add(int64(len(pg.ids)))
	return nil
}

// report publishes the run's progress and, for a long one, logs it.
func (r *run) report() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastLog := time.Now()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
		done, total := r.done.Load(), r.total.Load()
		r.p.progress(done, total)
		if r.p.ProgressEvery > 0 && time.Since(lastLog) >= r.p.ProgressEvery {
			lastLog = time.Now()
			elapsed := time.Since(r.start)
			r.p.log.Info("applying", "what", r.what, "documents_done", done, "documents_queued", total,
				"per_second", int64(float64(done)/elapsed.Seconds()), "elapsed", elapsed.Round(time.Second))
		}
	}
}

// write is one page of rebuilt documents bound for one collection.
type write struct {
	collection string // physical
	ids        []string
	docs       []any
	gone       []string // ids whose rows no longer exist
	evictions  []cache.Eviction
}

// eviction adds the tombstone of a document's cache entry, unless this
// projector feeds a generation being built: the live cache describes the
// live collections, which it does not write.
func (p *Projector) eviction(evs []cache.Eviction, proj Collection, id string, lsn uint64) []cache.Eviction {
	if p.shadow {
		return evs
	}
	if k := p.cache.DocumentKey(proj.collection, id); k != "" {
		evs = append(evs, cache.Eviction{Key: k, LSN: lsn})
	}
	return evs
}

// write applies one page: Mongo first, then the tombstones, so that a
// reader who misses after the tombstone finds the new document.
func (p *Projector) write(ctx context.Context, w write) error {
	if err := p.reads.Put(ctx, w.collection, w.ids, w.docs); err != nil {
		return err
	}
	if err := p.reads.Delete(ctx, w.collection, w.gone); err != nil {
		return err
	}
	if err := p.cache.Evict(ctx, w.evictions...); err != nil {
		return fmt.Errorf("evict %s: %w", w.collection, err)
	}
	return nil
}

// write applies one page and notes the keys it tombstoned. A page's
// tombstones are left to the batch's tail pipeline, which writes them
// with the page epoch and the feed in one round trip, while fewer than
// projectBatch wait there; past that, the page writes them and those
// waiting at once. Either way they are written before the batch is
// announced, which is what readers at a token wait for.
func (r *run) write(w write) error {
	if !r.p.shadow {
		r.mu.Lock()
		if len(r.deferred)+len(w.evictions) <= projectBatch {
			r.deferred = append(r.deferred, w.evictions...)
			w.evictions = nil
		} else {
			w.evictions = append(w.evictions, r.deferred...)
			r.deferred = nil
		}
		r.mu.Unlock()
	}
	if err := r.p.write(r.ctx, w); err != nil {
		return err
	}
	if w.collection == r.p.target(readstore.Listings) && len(w.ids)+len(w.gone) > 0 {
		r.listings.Store(true)
	}
	r.noteEvicted(w.evictions)
	return nil
}

// noteEvicted adds tombstoned keys to the batch's announcement.
func (r *run) noteEvicted(evs []cache.Eviction) {
	if len(evs) == 0 {
		return
	}
	keys := make([]string, len(evs))
	for i, e := range evs {
		keys[i] = e.Key
	}
	r.mu.Lock()
	r.evicted.Add(keys...)
	r.mu.Unlock()
}

// writeBoth writes a page to the read store and its rows to the search
// store at once: each write is fenced by its own positions and the batch
// is announced only after both, so their order does not matter, and the
// search write costs a batch no time of its own unless it is the slower.
func (r *run) writeBoth(w write, collection string, docs []any) error {
	if r.searchGen == 0 {
		return r.write(w)
	}
	var g errgroup.Group
	g.Go(func() error { return r.write(w) })
	g.Go(func() error { return r.writeSearch(collection, docs, w.gone) })
	return g.Wait()
}

// lsnOf reads the stamp of a built document.
func lsnOf(d any) int64 {
	if s, ok := d.(readstore.Stamped); ok {
		return s.Stamp()
	}
	return 0
}

// Into returns a projector that maintains only the given collections,
// writing them to the given physical collections: the catch-up of a
// rebuild. It touches nothing live: no cache tombstones, no page
// generations, no applied-position announcements.
//
// searchGen is the search generation to write the listings to, 0 for
// none (the listings are not rebuilt).
func (p *Projector) Into(targets map[string]string, searchGen int64) *Projector {
	c := *p
	c.targets = targets
	c.shadow = true
	c.metrics = nil
	c.searchShadow = searchGen
	return &c
}

func (p *Projector) target(collection string) string {
	if p.targets == nil {
		return collection
	}
	return p.targets[collection]
}

// Reached announces a position that needed no document changes.
func (p *Projector) Reached(ctx context.Context, lsn pglogrepl.LSN) error {
	if p.shadow {
		return nil
	}
	return cache.Publish(ctx, p.rdb, p.keys, p.Position(lsn), cache.Evicted{})
}

// Rebuilt announces that a rebuild switched readers to new generations
// of the collections (logical name to physical) at the handover position
// lsn. What Redis, the near caches and the Watch streams hold may predate
// writes that no batch announced (a rebuild after a lost slot recovers
// exactly those), so, as after a full pass: every document key of the
// rebuilt collections is tombstoned at lsn, the listings page epoch
// moves, every process drops its near cache (Evicted.All), and every
// stream resyncs (a feed "all" entry). Tombstones never move a key back,
// so a document the running CDC has already replaced above lsn keeps its
// newer value; fills of rebuilt documents stamped below lsn are refused
// until the tombstone expires, and those reads go to the read store.
//
// When every collection was rebuilt (all), the read side reflects
// everything up to lsn, and the announcement raises the applied position
// to it: tokens of writes that no live batch applied (an outage) are
// honoured at once. Otherwise the other collections still wait for the
// live CDC, and the position is left where it is.
func (p *Projector) Rebuilt(ctx context.Context, handover pglogrepl.LSN, collections map[string]string, all bool) error {
	lsn := p.Position(handover)
	for logical, physical := range collections {
		if p.cache.DocumentKey(logical, "x") == "" {
			continue // listed only, never cached one by one
		}
		err := p.reads.EachID(ctx, physical, projectBatch, func(ids []string) error {
			ev := make([]cache.Eviction, len(ids))
			for i, id := range ids {
				ev[i] = cache.Eviction{Key: p.cache.DocumentKey(logical, id), LSN: lsn}
			}
			return p.cache.Evict(ctx, ev...)
		})
		if err != nil {
			return fmt.Errorf("tombstone the rebuilt %s: %w", logical, err)
		}
	}
	if p.feed != nil {
		c := &changes{max: 1, all: [2]bool{true, true}}
		if err := p.feed.publish(ctx, p, c, lsn, lsn, ""); err != nil {
			return err
		}
	}
	everything := cache.Evicted{All: true}
	if err := p.cache.BumpPageEpoch(ctx, readstore.Listings, &everything); err != nil {
		return err
	}
	position := lsn
	if !all {
		position = 0 // announce, never raise
	}
	return cache.Publish(ctx, p.rdb, p.keys, position, everything)
}
