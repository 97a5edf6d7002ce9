package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

const freshFigure = "CDC freshness, commit to read-visible"

const (
	// freshWriters bounds the writes in flight; at 500/s with commits of a
	// few milliseconds, a handful are busy at once.
	freshWriters = 32
	// The baseline: a light load first, which shows the pipeline's own
	// latency when nothing queues, and opens the connections.
	freshBaseRate = 5.0
	freshBaseFor  = 4 * time.Second
	// freshWait bounds one wait; a write still not visible then is
	// reported as not visible.
	freshWait = 30 * time.Second
	// freshCheckEvery: one write in this many is also read back from Mongo
	// once its position is applied, to check that "applied" means visible.
	freshCheckEvery = 50
)

// measureFreshness runs the real CDC (the production Reader and
// Projector, see startCDC) while UpdateListing price changes arrive at a
// steady 500/s through app.Commands, spread over cdcListings listings of
// cdcSellers sellers (the sink figure's read side). Each write is timed
// from the moment its commit returns until the position it returns as its
// consistency token is applied: the moment a query that carries the token
// may answer, measured with the API's own watcher (a Redis subscription to
// the CDC's announcements). A sample of writes is also read back from
// Mongo, which must then hold at least the written version.
//
// Once more than 1% of the planned writes have waited longer than the p99
// target, the target is missed whatever follows, and the run stops issuing
// writes: a CDC that cannot keep up would otherwise leave a backlog that
// takes minutes to drain. Every issued write is still waited for.
func measureFreshness(ctx context.Context, r *runner, o options) (row, error) {
	e := itest.New(r)
	_, a := e.StartAPI(r)
	start := time.Now()
	set, err := listingFixtures(ctx, e, cdcSellers, cdcListings)
	if err != nil {
		return row{}, err
	}
	targets := make([]*freshTarget, len(set.docs))
	for i, d := range set.docs {
		targets[i] = &freshTarget{id: d.ID, seller: uuid.MustParse(d.Seller.ID), version: d.Version, price: d.Price.Minor}
	}
	// Scattered, as real edits are: in id order, successive writes would
	// touch neighbouring rows and the same few sellers.
	rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	stopCDC, err := startCDC(ctx, e)
	if err != nil {
		return row{}, err
	}
	r.Cleanup(func() {
		if err := stopCDC(); err != nil {
			progress("cdc freshness: %v", err)
		}
	})
	progress("cdc freshness: fixtures: %d sellers, %d listings in Postgres and as documents; CDC started; in %s",
		cdcSellers, cdcListings, time.Since(start).Round(time.Millisecond))

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := consistency.NewWatcher(e.Redis, consistency.KeysFor(e.RedisPrefix), e.Log)
	go w.Run(wctx)

	d := &freshDriver{app: a, watcher: w, reads: e.Reads, targets: targets}
	progress("cdc freshness: baseline: %.0f writes/s for %s", freshBaseRate, freshBaseFor)
	base, err := d.run(ctx, freshBaseRate, freshBaseFor, false)
	if err != nil {
		return row{}, fmt.Errorf("baseline: %w", err)
	}
	baseFresh := summarize(base.fresh)
	progress("cdc freshness: baseline: %d writes: p50 %s, p99 %s", base.writes, ms(baseFresh.p50), ms(baseFresh.p99))

	progress("cdc freshness: %.0f writes/s for %s", freshRate, o.duration)
	res, err := d.run(ctx, freshRate, o.duration, true)
	if err != nil {
		return row{}, err
	}
	fresh, commit := summarize(res.fresh), summarize(res.commit)
	achieved := perSecond(int64(res.writes), res.elapsed)
	progress("cdc freshness: %d writes in %s (%.0f/s), all visible after %s (%.0f/s): p50 %s, p99 %s, max %s; commits p50 %s, p99 %s; %d read back from mongo",
		res.writes, res.elapsed.Round(time.Millisecond), achieved, res.lastSeen.Round(time.Millisecond), res.keptUp(),
		ms(fresh.p50), ms(fresh.p99), ms(fresh.max), ms(commit.p50), ms(commit.p99), res.checked)
	if res.stale > 0 {
		return row{}, fmt.Errorf("%d of %d writes read back from mongo after their position was applied had an older version",
			res.stale, res.checked)
	}
	measured := fmt.Sprintf("p50 %s, p99 %s at %.0f writes/s", ms(fresh.p50), ms(fresh.p99), achieved)
	switch {
	case res.timeouts > 0:
		measured += fmt.Sprintf(", %d not visible in %s", res.timeouts, freshWait)
	case res.stoppedAt > 0:
		measured = fmt.Sprintf("fell behind: first %d writes (%.0f/s for %s): p50 %s, p99 %s; CDC kept up with ~%.0f/s",
			res.writes, achieved, res.stoppedAt.Round(100*time.Millisecond), ms(fresh.p50), ms(fresh.p99), res.keptUp())
	}
	// A rate well below the target's would flatter the figure.
	rateOK := achieved >= 0.95*freshRate
	return row{
		figure:    fmt.Sprintf("%s (%.0f writes/s, %dk listings)", freshFigure, freshRate, cdcListings/1000),
		measured:  measured,
		reference: fmt.Sprintf("at %.0f writes/s: p50 %s, max %s", freshBaseRate, ms(baseFresh.p50), ms(baseFresh.max)),
		target:    fmt.Sprintf("p50 < %d ms, p99 < %d ms", freshMaxP50.Milliseconds(), freshMaxP99.Milliseconds()),
		verdict:   verdict(rateOK && res.timeouts == 0 && res.stoppedAt == 0 && fresh.p50 < freshMaxP50 && fresh.p99 < freshMaxP99),
	}, nil
}

// freshTarget is a listing the driver edits; mu orders the edits of one
// listing, whose expected version each edit needs.
type freshTarget struct {
	mu      sync.Mutex
	id      string
	seller  uuid.UUID
	version int64
	price   int64
}

// freshDriver edits the targets round robin.
type freshDriver struct {
	app     *app.App
	watcher *consistency.Watcher
	reads   *readstore.Store
	targets []*freshTarget
	next    int
}

type freshResult struct {
	writes    int
	elapsed   time.Duration   // from the first write issued to the last commit
	commit    []time.Duration // UpdateListing's own latency
	fresh     []time.Duration // commit returned → position applied
	timeouts  int
	checked   int
	stale     int
	stoppedAt time.Duration // when writing stopped early, or 0
	lastSeen  time.Duration // when the last write became visible
}

// keptUp estimates the write rate the CDC sustained: every write, from
// the first issued to the last visible.
func (r freshResult) keptUp() float64 { return perSecond(int64(r.writes), r.lastSeen) }

// run paces writes at rate for d: a pacer releases each write at its slot
// in time to a pool of writers; each writer commits, then hands the wait
// for visibility to its own goroutine, so that a slow projection never
// slows the writes down. With stopEarly, the pacer stops once more than 1%
// of the planned writes have waited past the p99 target.
func (fd *freshDriver) run(ctx context.Context, rate float64, d time.Duration, stopEarly bool) (freshResult, error) {
	total := int(rate * d.Seconds())
	jobs := make(chan int, total)
	var (
		res      freshResult
		mu       sync.Mutex
		firstErr error
		writers  sync.WaitGroup
		waits    sync.WaitGroup
		slow     atomic.Int64
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	start := time.Now()
	for range freshWriters {
		writers.Go(func() {
			for i := range jobs {
				fd.write(ctx, i, start, &res, &mu, &waits, &slow, fail)
			}
		})
	}

	tick := time.NewTicker(time.Millisecond)
	issued := 0
pace:
	for issued < total {
		if stopEarly && slow.Load() > int64(total/100) {
			res.stoppedAt = time.Since(start)
			break
		}
		due := min(total, int(time.Since(start).Seconds()*rate)+1)
		for ; issued < due; issued++ {
			jobs <- fd.next
			fd.next++
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			break pace
		}
	}
	tick.Stop()
	close(jobs)
	writers.Wait()
	res.elapsed = time.Since(start)
	waits.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = context.Cause(ctx)
	}
	return res, firstErr
}

// write commits the n-th price change, then waits for it in the background.
func (fd *freshDriver) write(ctx context.Context, n int, start time.Time, res *freshResult, mu *sync.Mutex, waits *sync.WaitGroup, slow *atomic.Int64, fail func(error)) {
	if ctx.Err() != nil {
		return
	}
	t := fd.targets[n%len(fd.targets)]
	t.mu.Lock()
	t0 := time.Now()
	w, err := fd.app.Commands.UpdateListing(ctx, t.seller, t.id, t.version,
		app.ListingInput{Price: &app.Money{Currency: "EUR", Minor: t.price + 1}}, []string{"price"})
	committed := time.Now()
	if err == nil {
		t.version, t.price = w.Version, t.price+1
	}
	t.mu.Unlock()
	if err != nil {
		fail(fmt.Errorf("UpdateListing(%s): %w", t.id, err))
		return
	}
	lsn, err := consistency.ParseToken(w.ConsistencyToken)
	if err != nil {
		fail(fmt.Errorf("UpdateListing(%s) returned token %q: %w", t.id, w.ConsistencyToken, err))
		return
	}
	mu.Lock()
	res.writes++
	res.commit = append(res.commit, committed.Sub(t0))
	mu.Unlock()

	waits.Go(func() {
		wctx, cancel := context.WithTimeout(ctx, freshWait)
		defer cancel()
		late := time.AfterFunc(freshMaxP99-time.Since(committed), func() { slow.Add(1) })
		werr := fd.watcher.Wait(wctx, lsn)
		took := time.Since(committed)
		late.Stop()
		stale, checked := false, false
		if werr == nil && n%freshCheckEvery == 0 {
			checked = true
			doc, err := readstore.Find[readstore.Listing](ctx, fd.reads, readstore.Listings, t.id)
			if err != nil {
				fail(fmt.Errorf("read listing %s back from mongo: %w", t.id, err))
				return
			}
			// A later edit of the same listing may have landed too.
			stale = doc.Version < w.Version
		}
		mu.Lock()
		defer mu.Unlock()
		res.fresh = append(res.fresh, took)
		res.lastSeen = max(res.lastSeen, time.Since(start))
		if werr != nil {
			res.timeouts++
		}
		if checked {
			res.checked++
		}
		if stale {
			res.stale++
		}
	})
}

// startCDC streams the env's slot into the real projector, with the
// production reader settings, as the cdc process does once its read side
// is initialised. The slot is made here, after the fixtures, whose
// documents the fixtures put in Mongo themselves: itest's StartCDC would
// first re-project every fixture through single-document upserts, which
// on FerretDB takes longer than it allows. The returned stop lets the
// reader finish the batch it is applying, which can take seconds when
// the projector has fallen behind.
func startCDC(ctx context.Context, e *itest.Env) (stop func() error, err error) {
	if err := e.Reads.EnsureIndexes(ctx); err != nil {
		return nil, fmt.Errorf("indexes: %w", err)
	}
	if err := createSlot(ctx, e, e.Slot); err != nil {
		return nil, err
	}
	sink := cdc.NewProjector(e.PG, e.Reads, e.Cache(), e.Redis, consistency.KeysFor(e.RedisPrefix), e.Log)
	rd := cdc.NewReader(cdc.Config{ConnString: e.PGURL, Slot: e.Slot, Publication: e.Publication, Log: e.Log}, sink)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- rd.Run(rctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			return fmt.Errorf("the CDC did not stop within a minute")
		}
	}, nil
}
