package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// The freshness driver: UpdateListing price changes through app.Commands
// at a steady rate, each timed from the moment its commit returns until
// the position it returns as its consistency token is applied: the moment
// a query that carries the token may answer, measured with the API's own
// watcher (a Redis subscription to the CDC's announcements). A sample of
// writes is also read back from Mongo, which must then hold at least the
// written version. The CDC itself runs elsewhere (see cdc_vs_sink.go).

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
	watcher *cache.Watcher
	reads   *readstore.Model
	targets []*freshTarget
	next    int
	// onCommit, if set, learns of each write once committed, in version
	// order for each listing.
	onCommit func(id string, version int64, committed time.Time)
	// onVisible, if set, learns how long each write took to become
	// visible.
	onVisible func(id string, took time.Duration)
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
		if fd.onCommit != nil {
			fd.onCommit(t.id, w.Version, committed)
		}
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
		if werr == nil && fd.onVisible != nil {
			fd.onVisible(t.id, took)
		}
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
