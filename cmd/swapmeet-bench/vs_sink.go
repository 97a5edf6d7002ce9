package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
	"github.com/swapmeet/swapmeet/internal/system"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// The CDC against its sink, on -cdc-catalogue listings followed by a
// `swapmeet cdc` process, as ratios of raw writes of the same documents
// to every store a CDC batch writes (measureRaw): freshness at half that rate,
// with commit-to-delivery of WatchListing streams; the highest rate that
// stays fresh; one transaction updating the whole catalogue.

const (
	bigTxnMaxRSS   = 512 << 20
	bigTxnMinRatio = 0.8 // CDC docs/s over raw docs/s
	rawSample      = 20_000
	freshTargets   = 10_000
	freshBaseRate  = 10.0 // the light load first: the pipeline's own latency
	freshBaseFor   = 15 * time.Second
	// The light load's targets: commit to applied, and an UpdateListing's
	// answer to the WatchListing delivery.
	baseMaxP50, baseMaxP99           = 10 * time.Millisecond, 30 * time.Millisecond
	baseDeliveryP50, baseDeliveryP99 = 15 * time.Millisecond, 50 * time.Millisecond
	cdcWorkers                       = 2 // SWAPMEET_CDC_WORKERS's default
	// descTail lengthens descriptions to about 400 characters, as real ones are.
	descTail = ` || ' Comes from a smoke-free home and has been stored dry. ' ||
		(ARRAY['Minor scuffs on the base, shown in the photos.', 'No chips or cracks; every part works as it should.',
		       'Original box and papers included.', 'Cleaned and tested last week.',
		       'Small mark on one side, barely visible.'])[1 + g % 5] ||
		' Measures about ' || (10 + g % 90) || ' cm across and weighs ' || (1 + g % 20) ||
		' kg. Pickup is possible in the evenings, or I can ship it insured, with combined postage for several items.' ||
		' Happy to send more pictures or measurements before you buy.'`
)

func runAgainstSink(ctx context.Context, e *env, o options) (rows []row, err error) {
	defer recovered(&err)
	n := o.cdcCatalogue
	if n < 1000 {
		return nil, fmt.Errorf("need -cdc-catalogue >= 1000, not %d", n)
	}
	bin := swapmeetBinary(ctx, e)
	a := e.startAPI(func(c *system.Config) { // the delivery streams are anonymous, from one address
		c.Watch.MaxStreams = max(c.Watch.MaxStreams, o.watchListings+16)
		c.Watch.MaxStreamsPerOwner = max(c.Watch.MaxStreamsPerOwner, o.watchListings+16)
	})
	seedCatalogue(ctx, e, n, 500, descTail)
	loadCatalogue(ctx, e, n)
	proc := startCDCProcess(e, bin)
	one := measureOneUpsert(ctx, e, readstore.New(e.Mongo.Database(e.Config.MongoDB)))
	rawRate, method := measureRaw(ctx, e, n, o.duration) // while the CDC has nothing to do
	rows = []row{{figure: fmt.Sprintf("Raw write rate to the read store, the search store and the history at once (the read store's the fastest of %s; %s listings)", rawMethodNames(), sizeLabel(n)),
		measured: fmt.Sprintf("%.0f docs/s (%s)", rawRate, method), reference: "the reference of the rows below", ratio: "1.00x"}}
	check(proc.running())
	rows, search := measureFreshness(ctx, e, a, proc, o, rawRate, one, sizeLabel(n), rows)
	check(proc.running())
	// Raw again, closer to the big transaction: the machine's speed drifts.
	// The rate search, between the two, is held to the faster.
	rawBig, methodBig := measureRaw(ctx, e, n, o.duration)
	rows[0].measured += fmt.Sprintf("; %.0f docs/s (%s) after the rate search", rawBig, methodBig)
	rows = append(rows, search.row(max(rawRate, rawBig)))
	return append(rows, measureBigTxn(ctx, e, o, proc, rawBig)...), nil
}

// rawMethods are the ways of writing the documents to the read store that
// the reference tries: single upserts at the CDC's concurrency, and bulks.
// The fastest is the reference, so that no ratio improves by a slower
// reference. No method has more than 16 statements in flight: FerretDB
// 1.x holds a backend connection per statement of a bulk, and bulks
// needing more than its pool between them deadlock it (docs/cdc.md,
// "Writing a page").
var rawMethods = []struct{ bulk, concurrency int }{{1, 4 * cdcWorkers}, {4, 2}, {4, 4}, {8, 2}}

func rawMethodName(bulk, concurrency int) string {
	if bulk == 1 {
		return fmt.Sprintf("single upserts, %d at a time", concurrency)
	}
	return fmt.Sprintf("bulks of %d, %d at a time", bulk, concurrency)
}

func rawMethodNames() string {
	names := make([]string, len(rawMethods))
	for i, m := range rawMethods {
		names[i] = rawMethodName(m.bulk, m.concurrency)
	}
	return strings.Join(names, "; ")
}

// measureRaw writes random catalogue documents, sinkPutBatch at a time, to
// every store a CDC batch writes them to, with each of rawMethods for the
// read store, for d; it returns the fastest rate and its method.
func measureRaw(ctx context.Context, e *env, n int, d time.Duration) (float64, string) {
	sample := listingDocs(ctx, e.PG, listingIDs(ctx, e.PG, `SELECT id FROM listings ORDER BY random() LIMIT $1`, min(n, rawSample)), 1)
	gen := must(e.Search.Live(ctx)).ID
	best, method := 0.0, ""
	for _, m := range rawMethods {
		s := readstore.New(e.Mongo.Database(e.Config.MongoDB)) // as the cdc process makes its store
		s.BulkSize, s.WriteConcurrency = m.bulk, m.concurrency
		name := rawMethodName(m.bulk, m.concurrency)
		w := &rawStores{reads: s, search: e.Search, gen: gen, lsn: int64(currentLSN(ctx, e.PG))}
		done, took := writeListings(ctx, sample, d, true, func(doc *readstore.Listing, now time.Time) { doc.UpdatedAt, doc.LSN = now, w.lsn },
			func(chunk []readstore.Listing) error { return w.write(ctx, chunk) })
		rate := perSecond(int64(done), took)
		progress("cdc vs sink: raw: %d documents written, the read store's with %s: %.0f docs/s (busy: %s)", done, name, rate, w.busy(took))
		if done == 0 {
			check(fmt.Errorf("raw: no document written with %s", name))
		}
		if rate > best {
			best, method = rate, name
		}
	}
	return best, method
}

// rawStores writes chunks of listing documents where a CDC batch writes
// them, the three stores at once: the read store, the search store's live
// generation, and the history (one entry a document: the price change the
// freshness driver makes, annotated as the API annotates it). The
// entries' positions are the raw run's; their ordinals count from
// rawSeqBase, past any transaction's, so they are never a change the CDC
// records.
type rawStores struct {
	reads    *readstore.Model
	search   *search.Store
	gen, lsn int64
	seq      int32
	took     [3]time.Duration // in each store's writes: read, search, history
}

const rawSeqBase = 1 << 30

func (w *rawStores) write(ctx context.Context, chunk []readstore.Listing) error {
	rows, hist := make([]search.Listing, len(chunk)), make([]search.HistoryEntry, len(chunk))
	for i, doc := range chunk {
		rows[i] = search.FromDocument(doc)
		w.seq++
		hist[i] = search.HistoryEntry{Position: w.lsn, Seq: rawSeqBase + w.seq, CommitTime: doc.UpdatedAt,
			ObjectType: search.ObjectListing, ObjectID: uuid.MustParse(doc.ID), Operation: search.OpUpdated,
			Changes: []search.FieldChange{{Field: "price.amount_minor",
				Before: strconv.FormatInt(doc.Price.Minor-1, 10), After: strconv.FormatInt(doc.Price.Minor, 10)}},
			Annotated: true, Actor: doc.Seller.ID, RPC: "/swapmeet.v1.ListingService/UpdateListing",
			RequestID: uuid.NewString(), TraceParent: "00-" + strings.Repeat("ab", 16) + "-" + strings.Repeat("cd", 8) + "-01"}
	}
	timed := func(i int, f func() error) func() error {
		return func() error {
			t0 := time.Now()
			err := f()
			w.took[i] += time.Since(t0)
			return err
		}
	}
	var g errgroup.Group
	g.Go(timed(0, func() error { return putChunk(ctx, w.reads, chunk) }))
	// Position 0: the generation's applied position stays the CDC's.
	g.Go(timed(1, func() error { return w.search.Apply(ctx, w.gen, search.Batch{Listings: rows}) }))
	g.Go(timed(2, func() error { return w.search.WriteHistory(ctx, hist) }))
	return g.Wait()
}

// busy reads like "read store 96%, search 12%, history 3%" of took.
func (w *rawStores) busy(took time.Duration) string {
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / took.Seconds() }
	return fmt.Sprintf("read store %.0f%%, search %.0f%%, history %.0f%%", pct(w.took[0]), pct(w.took[1]), pct(w.took[2]))
}

// measureOneUpsert times single-document Puts, one after another: the
// read store's own latency, next to which the light load's are read.
func measureOneUpsert(ctx context.Context, e *env, s *readstore.Model) latencies {
	docs := listingDocs(ctx, e.PG, listingIDs(ctx, e.PG, `SELECT id FROM listings ORDER BY random() LIMIT $1`, 200), 1)
	lsn := int64(currentLSN(ctx, e.PG))
	took := make([]time.Duration, 0, len(docs))
	for _, doc := range docs {
		doc.LSN = lsn
		t0 := time.Now()
		check(s.Put(ctx, readstore.Listings, []string{doc.ID}, []any{doc}))
		took = append(took, time.Since(t0))
	}
	l := summarize(took)
	progress("cdc vs sink: one upsert at a time: p50 %s, p99 %s", ms(l.p50), ms(l.p99))
	return l
}

// measureFreshness adds the freshness and commit-to-delivery rows, and
// searches for the highest rate held (whose row waits for the second raw
// rate).
func measureFreshness(ctx context.Context, e *env, a *api, cdc *process, o options, rawRate float64, one latencies, size string, rows []row) ([]row, rateSearch) {
	targetRows, _ := e.PG.Query(ctx, `SELECT id::text, seller_id, version, price_minor FROM listings ORDER BY random() LIMIT $1`, freshTargets)
	targets := must(pgx.CollectRows(targetRows, func(row pgx.CollectableRow) (*freshTarget, error) {
		t := &freshTarget{}
		return t, row.Scan(&t.id, &t.seller, &t.version, &t.price)
	}))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := cache.NewWatcher(e.Redis, cache.AppliedKeysFor(e.Config.RedisPrefix), e.log)
	go w.Run(wctx)
	d := &freshDriver{app: a.app, watcher: w, reads: e.Reads, targets: targets, cdc: cdc}
	watch := must(watchFreshTargets(ctx, a.url, targets, o.watchListings))
	if watch != nil {
		defer watch.set.close()
	}
	// The light load writes the watched listings alone, so that each of its
	// writes is timed to its delivery too.
	bd := d
	if watch != nil {
		watched := *d
		watched.targets = watch.watched
		bd = &watched
	}
	baseRun := func() freshStep { return bd.run(ctx, freshBaseRate, freshBaseFor, false) }
	oneRef := fmt.Sprintf("one raw upsert p50 %s, p99 %s", ms(one.p50), ms(one.p99))
	var base freshStep
	var baseDelivery *row
	if watch == nil {
		base = baseRun()
	} else {
		var lat latencies
		var undelivered int64
		base, lat, _, undelivered = watch.time(bd, baseRun)
		measured := deliveryMeasured(lat, undelivered)
		progress("cdc vs sink: at %.0f writes/s: answer to delivery: %s", freshBaseRate, measured)
		baseDelivery = &row{fmt.Sprintf("WatchListing: UpdateListing's answer to delivery at %.0f writes/s", freshBaseRate), measured,
			oneRef, "",
			fmt.Sprintf("p50 < %d ms, p99 < %d ms", baseDeliveryP50.Milliseconds(), baseDeliveryP99.Milliseconds()),
			verdict(lat.n > 0 && undelivered == 0 && lat.p50 < baseDeliveryP50 && lat.p99 < baseDeliveryP99)}
	}
	progress("cdc vs sink: freshness: at %.0f writes/s: %s, max %s; the lag's stages: %s", freshBaseRate, base, ms(base.fresh.max), base.stages)
	rows = append(rows, row{fmt.Sprintf("%s at %.0f writes/s (%s listings)", freshFigure, freshBaseRate, size), base.String(),
		oneRef, "",
		fmt.Sprintf("p50 < %d ms, p99 < %d ms", baseMaxP50.Milliseconds(), baseMaxP99.Milliseconds()),
		verdict(base.timeouts == 0 && base.fresh.n > 0 && base.fresh.p50 < baseMaxP50 && base.fresh.p99 < baseMaxP99)})
	if baseDelivery != nil {
		rows = append(rows, *baseDelivery)
	}
	half := 0.5 * rawRate
	at, delivery, err := watch.during(ctx, d, func() freshStep { return d.run(ctx, half, o.duration, true) })
	progress("cdc vs sink: freshness: %s, max %s; commits p50 %s; %d read back from mongo; the lag's stages: %s", at, ms(at.fresh.max), ms(summarize(at.commit).p50), at.checked, at.stages)
	measured := at.String()
	rows = append(rows, row{fmt.Sprintf("%s at half the raw rate (%s listings)", freshFigure, size), measured,
		fmt.Sprintf("raw %.0f docs/s", rawRate), times(at.achieved / rawRate),
		fmt.Sprintf("p50 < %d ms, p99 < %d ms at 0.5x", freshMaxP50.Milliseconds(), freshMaxP99.Milliseconds()), verdict(at.held() && at.fresh.p50 < freshMaxP50)})
	if delivery != nil {
		rows = append(rows, *delivery)
	}
	check(err)
	if watch != nil {
		check(watch.set.close())
	}
	return rows, searchFreshRate(ctx, d, at, rawRate, o.cdcSearch)
}

// measureBigTxn updates the whole catalogue in one transaction and times the CDC applying it.
func measureBigTxn(ctx context.Context, e *env, o options, proc *process, rawRate float64) []row {
	n, of := o.cdcCatalogue, sizeLabel(o.cdcCatalogue)+" changed listings"
	if n < 1_000_000 {
		of += " (target: 1M; -cdc-catalogue)"
	}
	timeout := o.cdcApplyTimeout
	if timeout <= 0 {
		timeout = max(5*time.Minute, min(time.Hour, time.Duration(3*float64(n)/rawRate*float64(time.Second))))
	}
	rssBefore, peak := must2(proc.memory())
	conn := backlogConn(ctx, e)
	defer conn.Close(context.WithoutCancel(ctx))
	must(conn.Exec(ctx, `SET synchronous_commit = on`)) // as the API: durable when Exec returns
	if tag := must(conn.Exec(ctx, `UPDATE listings SET price_minor = price_minor + 1, version = version + 1, updated_at = now()`)); tag.RowsAffected() != int64(n) {
		check(fmt.Errorf("the big transaction updated %d listings, not %d", tag.RowsAffected(), n))
	}
	committed, target := time.Now(), currentLSN(ctx, conn)
	progress("cdc vs sink: big transaction of %d listings committed; waiting up to %s for the CDC (RSS %s)", n, timeout.Round(time.Second), mib(rssBefore))
	stopped := "" // why the wait ended without the transaction applied
	for lastLog := time.Now(); stopped == ""; {
		if !wait.Sleep(ctx, 250*time.Millisecond) {
			check(context.Cause(ctx))
		}
		check(proc.running())
		rss, p, merr := proc.memory()
		peak = max(peak, p)
		published, confirmed := appliedPositions(ctx, e)
		if published >= target || confirmed >= target {
			break
		}
		if merr == nil && rss > int64(o.cdcRSSLimitMiB)<<20 {
			stopped = fmt.Sprintf("its RSS passed the %d MiB -cdc-rss-limit", o.cdcRSSLimitMiB)
		} else if time.Since(committed) > timeout {
			stopped = "not applied within the -cdc-apply-timeout"
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			progress("cdc vs sink: big transaction: %s since commit: CDC RSS %s, peak %s; published %s, confirmed %s, target %s",
				time.Since(committed).Round(time.Second), mib(rss), mib(peak), published, confirmed, target)
		}
	}
	took := time.Since(committed)
	rate := perSecond(int64(n), took)
	rssRow := row{"CDC peak RSS applying 1 txn of " + of, fmt.Sprintf("%s (RSS before %s)", mib(peak), mib(rssBefore)),
		"", "", "< " + mib(bigTxnMaxRSS), verdict(peak < bigTxnMaxRSS)}
	rateRow := row{"CDC applying 1 txn of " + of, fmt.Sprintf("%.0f docs/s (applied %s after commit)", rate, took.Round(100*time.Millisecond)),
		fmt.Sprintf("raw %.0f docs/s", rawRate), times(rate / rawRate), fmt.Sprintf(">= %.1fx", bigTxnMinRatio), verdict(rate/rawRate >= bigTxnMinRatio)}
	if stopped != "" { // the times are bounds: the RSS so far, and the rate if it is already too slow
		progress("cdc vs sink: big transaction: giving up: %s; stopping the CDC", stopped)
		_ = proc.stop(2 * time.Second)
		rssRow.measured, rateRow.measured = ">= "+rssRow.measured, fmt.Sprintf("gave up %s after the commit: %s", took.Round(time.Second), stopped)
		rssRow.verdict = map[bool]string{true: verdictNotMeasured, false: verdictMiss}[peak < bigTxnMaxRSS]
		rateRow.ratio, rateRow.verdict = "< "+rateRow.ratio, map[bool]string{true: verdictNotMeasured, false: verdictMiss}[rate/rawRate >= bigTxnMinRatio]
		return []row{rssRow, rateRow}
	}
	if _, p, err := proc.memory(); err == nil {
		peak = max(peak, p)
		rssRow.measured, rssRow.verdict = fmt.Sprintf("%s (RSS before %s)", mib(peak), mib(rssBefore)), verdict(peak < bigTxnMaxRSS)
	}
	progress("cdc vs sink: big transaction applied %s after its commit: %.0f docs/s; CDC peak RSS %s", took.Round(time.Millisecond), rate, mib(peak))
	check(verifyListingVersions(ctx, e.Reads, e.PG))
	return []row{rssRow, rateRow}
}

func must2[A, B any](a A, b B, err error) (A, B) {
	check(err)
	return a, b
}

// appliedPositions reads the applied position the CDC publishes, and its slot's.
func appliedPositions(ctx context.Context, e *env) (published, confirmed pglogrepl.LSN) {
	s, err := e.Redis.Get(ctx, cache.AppliedKeysFor(e.Config.RedisPrefix).Applied).Result()
	if err == nil {
		published = pglogrepl.LSN(must(strconv.ParseUint(s, 16, 64)))
	} else if !errors.Is(err, redis.Nil) {
		check(fmt.Errorf("read the applied position: %w", err))
	}
	var c *string
	check(e.PG.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, e.Config.Slot).Scan(&c))
	if c != nil {
		confirmed = must(pglogrepl.ParseLSN(*c))
	}
	return published, confirmed
}

// The freshness driver: UpdateListing price changes at a steady rate, each
// timed from its commit until the API's watcher sees its token applied;
// one in freshCheckEvery is read back from Mongo.

const (
	freshFigure     = "CDC freshness, commit to read-visible"
	freshMaxP50     = 20 * time.Millisecond
	freshMaxP99     = 100 * time.Millisecond
	freshWriters    = 32 // writes in flight at most
	freshWait       = 30 * time.Second
	freshCheckEvery = 50
	searchStep      = 5 * time.Second // each step of the rate search
	searchClose     = 1.15            // the search ends once failed/held is within this
)

// freshTarget is a listing the driver edits; mu orders its edits.
type freshTarget struct {
	mu      sync.Mutex
	id      string
	seller  uuid.UUID
	version int64
	price   int64
}

// freshDriver edits the targets round robin; onCommit and onVisible see each write.
type freshDriver struct {
	app       *app.App
	watcher   *cache.Watcher
	reads     *readstore.Model
	targets   []*freshTarget
	next      int
	onCommit  func(id string, version int64, committed time.Time)
	onVisible func(id string, took time.Duration)
	cdc       *process // nil: a CDC whose stage shares are not reported
}

// run writes at rate for d; with stopEarly, until 1% of them wait past the p99 target.
func (fd *freshDriver) run(ctx context.Context, rate float64, d time.Duration, stopEarly bool) freshStep {
	total := int(rate * d.Seconds())
	var (
		res      = freshStep{rate: rate}
		mu       sync.Mutex
		firstErr error
		waits    sync.WaitGroup
		slow     atomic.Int64
		writers  = make(chan struct{}, freshWriters)
		start    = time.Now()
		before   = fd.cdc.stageSeconds()
	)
	write := func(n int, t *freshTarget) {
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
		<-writers
		var lsn uint64
		if err == nil {
			var pos consistency.Position
			pos, err = consistency.ParseWriteToken(w.ConsistencyToken)
			lsn = pos.LSN
		}
		late := time.AfterFunc(freshMaxP99-time.Since(committed), func() { slow.Add(1) })
		wctx, cancel := context.WithTimeout(ctx, freshWait)
		werr := cmp.Or(err, fd.watcher.Wait(wctx, lsn))
		took := time.Since(committed)
		cancel()
		late.Stop()
		checked, stale := werr == nil && n%freshCheckEvery == 0, false
		if checked { // a later edit of the same listing may have landed too
			doc, ferr := readstore.Find[readstore.Listing](ctx, fd.reads, readstore.Listings, t.id)
			err, stale = cmp.Or(err, ferr), doc.Version < w.Version
		}
		if werr == nil && fd.onVisible != nil {
			fd.onVisible(t.id, took)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			firstErr = cmp.Or(firstErr, fmt.Errorf("UpdateListing(%s), then reading it back: %w", t.id, err))
			return
		}
		res.writes++
		res.commit, res.visible = append(res.commit, committed.Sub(t0)), append(res.visible, took)
		res.elapsed, res.lastSeen = max(res.elapsed, committed.Sub(start)), max(res.lastSeen, time.Since(start))
		res.timeouts += map[bool]int{true: 1}[werr != nil]
		res.checked += map[bool]int{true: 1}[checked]
		res.stale += map[bool]int{true: 1}[stale]
	}
	for n := range total {
		if stopEarly && slow.Load() > int64(total/100) {
			res.stoppedAt = time.Since(start)
			break
		}
		if !wait.Sleep(ctx, time.Until(start.Add(time.Duration(float64(n)/rate*float64(time.Second))))) {
			break
		}
		writers <- struct{}{}
		t := fd.targets[fd.next%len(fd.targets)]
		fd.next++
		waits.Go(func() { write(n, t) })
	}
	waits.Wait()
	check(cmp.Or(firstErr, context.Cause(ctx)))
	if res.stale > 0 {
		check(fmt.Errorf("%d of %d writes read back from mongo after their position was applied had an older version", res.stale, res.checked))
	}
	res.fresh, res.achieved = summarize(res.visible), perSecond(int64(res.writes), cmp.Or(res.stoppedAt, res.elapsed))
	res.stages = stageShares(before, fd.cdc.stageSeconds())
	return res
}

// freshStep is what one run saw (times since its start; stoppedAt: when it stopped early).
type freshStep struct {
	rate, achieved                   float64 // asked for; issued
	fresh                            latencies
	writes, timeouts, checked, stale int
	commit, visible                  []time.Duration // UpdateListing's latency; commit → applied
	elapsed, lastSeen, stoppedAt     time.Duration
	stages                           string // where the CDC's lag went, as stageShares
}

// held: every write visible, p99 under the target, at the rate asked for.
func (s freshStep) held() bool { return s.withinP99() && !s.writerBound() }

func (s freshStep) withinP99() bool {
	return s.timeouts == 0 && s.stoppedAt == 0 && s.fresh.n > 0 && s.fresh.p99 < freshMaxP99
}

// writerBound: the driver could not issue the rate asked for.
func (s freshStep) writerBound() bool { return s.achieved < 0.95*s.rate }

// String reads like "120 writes/s: p50 14.2 ms, p99 48.0 ms".
func (s freshStep) String() string {
	out := fmt.Sprintf("%.0f writes/s: p50 %s, p99 %s", s.achieved, ms(s.fresh.p50), ms(s.fresh.p99))
	switch {
	case s.timeouts > 0:
		out += fmt.Sprintf(", %d not visible in %s", s.timeouts, freshWait)
	case s.stoppedAt > 0:
		out += fmt.Sprintf(", fell behind after %s (%d writes; the CDC kept up with ~%.0f/s)", s.stoppedAt.Round(100*time.Millisecond), s.writes, perSecond(int64(s.writes), s.lastSeen))
	}
	if s.writerBound() {
		out += fmt.Sprintf(" (asked %.0f/s)", s.rate)
	}
	return out
}

// rateSearch is what searchFreshRate tried: its steps, the first being
// the half-rate run, and how long the search took.
type rateSearch struct {
	steps []freshStep
	took  time.Duration
}

// searchFreshRate bisects for the highest write rate with p99 freshness
// under the target, starting from first, within budget.
func searchFreshRate(ctx context.Context, d *freshDriver, first freshStep, rawRate float64, budget time.Duration) rateSearch {
	step := min(searchStep, budget)
	steps := []freshStep{first}
	start := time.Now()
	for next, ok := nextSearchRate(steps, rawRate); ok && time.Since(start)+step <= budget; next, ok = nextSearchRate(steps, rawRate) {
		steps = append(steps, d.run(ctx, next, step, true))
		last := steps[len(steps)-1]
		progress("cdc vs sink: rate search: %s -> %s; the lag's stages: %s", last, map[bool]string{true: "held", false: "missed"}[last.held()], last.stages)
	}
	return rateSearch{steps: steps, took: time.Since(start).Round(time.Second)}
}

// row states the highest rate held against rawRate: the fastest raw rate
// of the run, measured before the search and after it.
func (rs rateSearch) row(rawRate float64) row {
	r := row{figure: fmt.Sprintf("Highest write rate with p99 freshness < %d ms", freshMaxP99.Milliseconds()),
		reference: fmt.Sprintf("raw %.0f docs/s (the faster of the run's two)", rawRate), target: ">= 0.50x (the freshness target's rate)"}
	steps := rs.steps
	var best, above, lowest *freshStep
	for i := range steps {
		s := &steps[i]
		if s.withinP99() && (best == nil || s.achieved > best.achieved) {
			best = s
		}
		if !s.withinP99() && (lowest == nil || s.rate < lowest.rate) {
			lowest = s
		}
	}
	if best == nil {
		r.measured = fmt.Sprintf("none held; lowest tried %s (%d steps, %s)", lowest, len(steps), rs.took)
		r.ratio, r.verdict = fmt.Sprintf("< %.2fx", lowest.rate/rawRate), verdictMiss
		return r
	}
	r.measured, r.ratio = fmt.Sprintf("%.0f writes/s (p99 %s)", best.achieved, ms(best.fresh.p99)), times(best.achieved/rawRate)
	if best.writerBound() { // the writer, not the CDC, set the limit
		r.measured, r.ratio = r.measured+"; the writer could not go faster", ">= "+r.ratio
	}
	for i := range steps {
		if s := &steps[i]; !s.withinP99() && s.rate > best.achieved && (above == nil || s.rate < above.rate) {
			above = s
		}
	}
	if above != nil {
		r.measured += fmt.Sprintf("; %.0f/s missed (p99 %s)", above.rate, ms(above.fresh.p99))
	}
	r.measured += fmt.Sprintf("; %d steps in %s", len(steps), rs.took)
	r.verdict = verdict(best.achieved >= 0.95*0.5*rawRate)
	return r
}

// nextSearchRate picks the next rate to try, or says the search is done.
func nextSearchRate(steps []freshStep, rawRate float64) (float64, bool) {
	lo, hi := 0.0, math.Inf(1)
	for _, s := range steps {
		switch {
		case s.withinP99() && s.writerBound():
			return 0, false // the writer is the limit: going higher says nothing
		case s.withinP99():
			lo = max(lo, s.achieved)
		default:
			hi = min(hi, s.rate)
		}
	}
	switch {
	case math.IsInf(hi, 1):
		return lo * 1.5, true
	case lo == 0:
		return hi / 2, hi/2 >= max(1, 0.02*rawRate)
	case hi/lo <= searchClose:
		return 0, false
	default:
		return math.Sqrt(lo * hi), true
	}
}
