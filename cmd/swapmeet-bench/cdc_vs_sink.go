package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/live"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/sandbox"
)

// The CDC against its sink: figures stated as ratios of the sink's raw
// upsert rate, measured in the same run on the same collection, because
// absolute rates differ five-fold between machines. One catalogue of
// -cdc-catalogue listings serves them all, and the CDC is a real `swapmeet
// cdc` process (see cdc_process.go):
//
//   - raw: readstore.Model.Put, the CDC's own write path with its
//     concurrency, replaces listing documents of the catalogue collection
//     directly, in batches as the projector hands them over;
//   - freshness at half the raw rate: UpdateListing price changes through
//     app.Commands at raw/2 writes/s, each timed from its commit until the
//     applied position the CDC publishes reaches its consistency token;
//   - the highest rate with p99 freshness under 100 ms: the same, in short
//     steps, bisecting between a rate that held and one that did not;
//   - one big transaction: an UPDATE of every listing of the catalogue,
//     committed at once; the time from its commit until the CDC has
//     applied it, and the CDC process's peak RSS (VmHWM) meanwhile.

var (
	cdcCatalogue    = flag.Int("cdc-catalogue", 1_000_000, "listings in the catalogue of the CDC figures against the sink; the big-transaction figure updates all of them in one transaction (the brief's size: 1000000)")
	cdcApplyTimeout = flag.Duration("cdc-apply-timeout", 0, "how long to wait for the CDC to apply the big transaction (0: three times what the raw upsert rate needs, within 5m..1h)")
	cdcRSSLimitMiB  = flag.Int("cdc-rss-limit", 2048, "stop the CDC process when its RSS passes this many MiB while it applies the big transaction (protects a shared machine)")
	cdcSearchFor    = flag.Duration("cdc-search", time.Minute, "time budget of the search for the highest write rate with p99 freshness under 100 ms")
)

const (
	bigTxnMaxRSS   = 512 << 20 // bytes
	bigTxnMinRatio = 0.8       // CDC docs/s over raw docs/s
	freshHalf      = 0.5       // the freshness figure's rate, of raw

	// rawSample is how many documents the raw measurement (-duration
	// long) cycles through, picked over the whole catalogue.
	rawSample = 20_000
	// freshTargets is how many listings the freshness writes spread over.
	freshTargets = 10_000
	// searchStep is how long each step of the rate search writes.
	searchStep = 5 * time.Second
	// searchClose ends the search once the rate that failed is within
	// this factor of the one that held.
	searchClose = 1.15
	// descTail lengthens the catalogue's descriptions to about 400
	// characters, as real ones are (and listings carry REPLICA IDENTITY
	// FULL: each change holds the old and the new row).
	descTail = ` || ' Comes from a smoke-free home and has been stored dry. ' ||
		(ARRAY['Minor scuffs on the base, shown in the photos.', 'No chips or cracks; every part works as it should.',
		       'Original box and papers included.', 'Cleaned and tested last week.',
		       'Small mark on one side, barely visible.'])[1 + g % 5] ||
		' Measures about ' || (10 + g % 90) || ' cm across and weighs ' || (1 + g % 20) ||
		' kg. Pickup is possible in the evenings, or I can ship it insured, with combined postage for several items.' ||
		' Happy to send more pictures or measurements before you buy.'`
)

func runAgainstSink(ctx context.Context, e *env, o options) ([]row, error) {
	n := *cdcCatalogue
	if n < 1000 {
		return nil, fmt.Errorf("need -cdc-catalogue >= 1000, not %d", n)
	}
	size := sizeLabel(n)
	bin, err := buildSwapmeet(ctx, e)
	if err != nil {
		return nil, err
	}
	api, err := e.startAPIWith(sandbox.APIOptions{Watch: func(w *live.Options) {
		// The commit-to-delivery streams are anonymous, all from one address.
		w.MaxStreams = max(w.MaxStreams, *watchListings+16)
		w.MaxStreamsPerOwner = max(w.MaxStreamsPerOwner, *watchListings+16)
	}})
	if err != nil {
		return nil, err
	}

	// The catalogue: Postgres first, then its documents with insertMany
	// (FerretDB's fast path: a first start of the CDC would upsert them
	// one by one), then the slot and the pointer, as a first start leaves
	// them; the CDC process then streams from there.
	took, err := seedCatalogue(ctx, e, n, descTail)
	if err != nil {
		return nil, err
	}
	progress("cdc vs sink: catalogue: %d listings of %d sellers in Postgres in %s", n, catalogueSellers, took.Round(time.Millisecond))
	docs, err := bulkLoadListings(ctx, e, readstore.Listings, "cdc vs sink: catalogue", n)
	if err != nil {
		return nil, err
	}
	progress("cdc vs sink: catalogue: %d listing documents loaded in %s", docs.docs, docs.wall.Round(time.Millisecond))
	if err := e.Reads.EnsureIndexes(ctx); err != nil {
		return nil, fmt.Errorf("indexes: %w", err)
	}
	if err := firstStart(ctx, e); err != nil {
		return nil, err
	}
	proc, err := startCDCProcess(e, bin)
	if err != nil {
		return nil, err
	}

	// Raw, while the CDC has nothing to do.
	raw := readstore.New(e.Mongo.Database(e.MongoDB)) // as the cdc process makes its store
	// The CDC writes SWAPMEET_CDC_WORKERS pages at a time, each with the
	// store's concurrency: the reference gets the same total.
	raw.WriteConcurrency *= cdcWorkers
	progress("cdc vs sink: raw: Put of listing documents of the %s catalogue, %d at a time, batches of %d, for %s",
		size, raw.WriteConcurrency, sinkPutBatch, o.duration)
	rawRate, err := measureRaw(ctx, e, raw, n, o.duration)
	if err != nil {
		return nil, err
	}
	rawRef := fmt.Sprintf("raw Put %.0f docs/s", rawRate)
	rows := []row{{
		figure:    fmt.Sprintf("Sink raw upsert rate (Put, %d at a time, %s listings in collection)", raw.WriteConcurrency, size),
		measured:  fmt.Sprintf("%.0f docs/s", rawRate),
		reference: "the reference of the rows below",
		ratio:     "1.00x",
	}}
	if ok, err := proc.running(); !ok {
		return rows, err
	}

	fresh, err := measureFreshAgainst(ctx, e, api, o, rawRate, rawRef, size)
	rows = append(rows, fresh...)
	if err != nil {
		return rows, err
	}
	if ok, err := proc.running(); !ok {
		return rows, err
	}

	// Raw again, just before the big transaction: the machine's speed
	// drifts, and that figure takes the closer of the two.
	progress("cdc vs sink: raw, again before the big transaction")
	rawBig, err := measureRaw(ctx, e, raw, n, o.duration)
	if err != nil {
		return rows, err
	}
	rows[0].measured += fmt.Sprintf("; %.0f docs/s before the big txn", rawBig)
	big, err := measureBigTxn(ctx, e, proc, n, rawBig, fmt.Sprintf("raw Put %.0f docs/s", rawBig))
	return append(rows, big...), err
}

// measureRaw replaces listing documents picked at random over the
// catalogue with Put for d, and returns the rate.
func measureRaw(ctx context.Context, e *env, s *readstore.Model, n int, d time.Duration) (float64, error) {
	sample, err := sampleListingDocs(ctx, e, min(n, rawSample))
	if err != nil {
		return 0, err
	}
	// The documents are as of now: a store that never replaces a document
	// with an older one takes them, and takes the CDC's later ones.
	lsn, err := currentLSN(ctx, e.PG)
	if err != nil {
		return 0, err
	}
	// Each write carries a new updated_at, so none is a no-op for the store.
	done, took, err := putListings(ctx, s, sample, d, true, func(doc *readstore.Listing, now time.Time) {
		doc.UpdatedAt, doc.LSN = now, int64(lsn)
	})
	if err != nil {
		return 0, err
	}
	rate := perSecond(int64(done), took)
	progress("cdc vs sink: raw: %d documents replaced in %s: %.0f docs/s", done, took.Round(time.Millisecond), rate)
	if rate <= 0 {
		return 0, errors.New("raw: no document replaced")
	}
	return rate, nil
}

// sampleListingDocs reads n listings picked at random over the whole
// catalogue, as documents.
func sampleListingDocs(ctx context.Context, e *env, n int) ([]readstore.Listing, error) {
	rows, err := e.PG.Query(ctx, listingDocsQuery+`
		WHERE l.id IN (SELECT id FROM listings ORDER BY random() LIMIT $1)`, n)
	if err != nil {
		return nil, fmt.Errorf("sample listings: %w", err)
	}
	docs, err := scanListingDocs(rows)
	if err != nil {
		return nil, fmt.Errorf("sample listings: %w", err)
	}
	rand.Shuffle(len(docs), func(i, j int) { docs[i], docs[j] = docs[j], docs[i] })
	return docs, nil
}

// freshStep is one run of the freshness driver at one rate.
type freshStep struct {
	rate     float64 // asked for
	achieved float64 // issued
	fresh    latencies
	res      freshResult
}

// held: every write visible, p99 under the target, and the rate asked for
// was reached.
func (s freshStep) held() bool { return s.withinP99() && !s.writerBound() }

func (s freshStep) withinP99() bool {
	return s.res.timeouts == 0 && s.res.stoppedAt == 0 && s.fresh.n > 0 && s.fresh.p99 < freshMaxP99
}

// writerBound: the driver could not issue the rate asked for.
func (s freshStep) writerBound() bool { return s.achieved < 0.95*s.rate }

func (s freshStep) String() string {
	out := fmt.Sprintf("%.0f/s: p50 %s, p99 %s", s.achieved, ms(s.fresh.p50), ms(s.fresh.p99))
	switch {
	case s.res.timeouts > 0:
		out += fmt.Sprintf(", %d not visible in %s", s.res.timeouts, freshWait)
	case s.res.stoppedAt > 0:
		out += fmt.Sprintf(", fell behind after %s", s.res.stoppedAt.Round(100*time.Millisecond))
	}
	if s.writerBound() {
		out += fmt.Sprintf(" (asked %.0f/s)", s.rate)
	}
	return out
}

// runFresh runs the driver at rate for dur. With stopEarly, it stops
// writing once the p99 target is missed whatever follows.
func runFresh(ctx context.Context, d *freshDriver, rate float64, dur time.Duration, stopEarly bool) (freshStep, error) {
	res, err := d.run(ctx, rate, dur, stopEarly)
	if err != nil {
		return freshStep{}, err
	}
	if res.stale > 0 {
		return freshStep{}, fmt.Errorf("%d of %d writes read back from mongo after their position was applied had an older version",
			res.stale, res.checked)
	}
	s := freshStep{rate: rate, achieved: perSecond(int64(res.writes), res.elapsed), fresh: summarize(res.fresh), res: res}
	if res.stoppedAt > 0 {
		// Writes stopped early: the rate is what was asked for until then.
		s.achieved = perSecond(int64(res.writes), res.stoppedAt)
	}
	return s, nil
}

// measureFreshAgainst gives the freshness row at half the raw rate and the
// row of the highest rate that keeps p99 under the target.
// cdcWorkers is SWAPMEET_CDC_WORKERS's default: pages the CDC writes at once.
const cdcWorkers = 2

func measureFreshAgainst(ctx context.Context, e *env, api *sandbox.API, o options, rawRate float64, rawRef, size string) ([]row, error) {
	targets, err := freshTargetsOf(ctx, e, freshTargets)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := cache.NewWatcher(e.Redis, cache.AppliedKeysFor(e.RedisPrefix), e.Log)
	go w.Run(wctx)
	d := &freshDriver{app: api.App, watcher: w, reads: e.Reads, targets: targets}
	watch, err := watchFreshTargets(ctx, api.Server.URL, targets)
	if err != nil {
		return nil, err
	}
	defer watch.close()

	progress("cdc vs sink: freshness: baseline: %.0f writes/s for %s", freshBaseRate, freshBaseFor)
	base, err := runFresh(ctx, d, freshBaseRate, freshBaseFor, false)
	if err != nil {
		return nil, fmt.Errorf("freshness baseline: %w", err)
	}
	progress("cdc vs sink: freshness: baseline: %s, max %s", base, ms(base.fresh.max))

	half := freshHalf * rawRate
	progress("cdc vs sink: freshness: %.0f writes/s (half the raw rate) for %s", half, o.duration)
	at, delivered, err := watch.during(ctx, d, func() (freshStep, error) { return runFresh(ctx, d, half, o.duration, true) })
	if err != nil {
		return nil, fmt.Errorf("freshness at half the raw rate: %w", err)
	}
	progress("cdc vs sink: freshness: %s, max %s; commits p50 %s; %d read back from mongo",
		at, ms(at.fresh.max), ms(summarize(at.res.commit).p50), at.res.checked)
	measured := fmt.Sprintf("p50 %s, p99 %s at %.0f writes/s", ms(at.fresh.p50), ms(at.fresh.p99), at.achieved)
	switch {
	case at.res.timeouts > 0:
		measured += fmt.Sprintf(", %d not visible in %s", at.res.timeouts, freshWait)
	case at.res.stoppedAt > 0:
		measured = fmt.Sprintf("fell behind after %s: p50 %s, p99 %s of the first %d writes; CDC kept up with ~%.0f/s",
			at.res.stoppedAt.Round(100*time.Millisecond), ms(at.fresh.p50), ms(at.fresh.p99), at.res.writes, at.res.keptUp())
	}
	if at.writerBound() {
		measured += fmt.Sprintf(" (the writer reached only %.0f of %.0f/s)", at.achieved, half)
	}
	rows := []row{{
		figure:    fmt.Sprintf("%s at half the raw rate (%s listings)", freshFigure, size),
		measured:  measured,
		reference: fmt.Sprintf("%s; at %.0f writes/s p50 %s", rawRef, freshBaseRate, ms(base.fresh.p50)),
		ratio:     times(at.achieved / rawRate),
		target:    fmt.Sprintf("p50 < %d ms, p99 < %d ms at %.1fx", freshMaxP50.Milliseconds(), freshMaxP99.Milliseconds(), freshHalf),
		verdict:   verdict(at.held() && at.fresh.p50 < freshMaxP50),
	}}
	if watch != nil {
		rows = append(rows, watch.row(delivered, at))
		if err := watch.close(); err != nil {
			return rows, err
		}
	}

	top, err := searchFreshRate(ctx, d, at, rawRate)
	if err != nil {
		return rows, err
	}
	return append(rows, top), nil
}

// searchFreshRate looks for the highest write rate whose p99 freshness is
// under the target: it climbs from the half-rate step by half again, or
// halves, until it has a rate that held and one that did not, then
// bisects (geometrically) until they are close or the time budget is
// spent.
func searchFreshRate(ctx context.Context, d *freshDriver, first freshStep, rawRate float64) (row, error) {
	figure := fmt.Sprintf("Highest write rate with p99 freshness < %d ms", freshMaxP99.Milliseconds())
	step := min(searchStep, *cdcSearchFor)
	steps := []freshStep{first}
	start := time.Now()
	for {
		next, ok := nextSearchRate(steps, rawRate)
		if !ok || time.Since(start)+step > *cdcSearchFor {
			break
		}
		progress("cdc vs sink: rate search: %.0f writes/s (%.2fx raw) for %s", next, next/rawRate, step)
		s, err := runFresh(ctx, d, next, step, true)
		if err != nil {
			return row{figure: figure, measured: "broken: see below", verdict: verdictFail}, fmt.Errorf("rate search: %w", err)
		}
		progress("cdc vs sink: rate search: %s -> %s", s, map[bool]string{true: "held", false: "missed"}[s.held()])
		steps = append(steps, s)
	}
	best, bestOK := freshStep{}, false
	var failed []freshStep
	for _, s := range steps {
		if s.withinP99() && (!bestOK || s.achieved > best.achieved) {
			best, bestOK = s, true
		}
		if !s.withinP99() {
			failed = append(failed, s)
		}
	}
	took := time.Since(start).Round(time.Second)
	r := row{
		figure:    figure,
		reference: fmt.Sprintf("raw Put %.0f docs/s", rawRate),
		target:    fmt.Sprintf(">= %.2fx (the freshness target's rate)", freshHalf),
	}
	if !bestOK {
		lowest := failed[0]
		for _, s := range failed {
			if s.rate < lowest.rate {
				lowest = s
			}
		}
		r.measured = fmt.Sprintf("none held; lowest tried %s (%d steps, %s)", lowest, len(steps), took)
		r.ratio = fmt.Sprintf("< %.2fx", lowest.rate/rawRate)
		r.verdict = verdictMiss
		return r, nil
	}
	r.measured = fmt.Sprintf("%.0f writes/s (p99 %s)", best.achieved, ms(best.fresh.p99))
	r.ratio = times(best.achieved / rawRate)
	if best.writerBound() {
		// The writer, not the CDC, set the limit.
		r.measured += "; the writer could not go faster"
		r.ratio = ">= " + r.ratio
	}
	above := freshStep{}
	for _, s := range failed {
		if s.rate > best.achieved && (above.rate == 0 || s.rate < above.rate) {
			above = s
		}
	}
	if above.rate > 0 {
		r.measured += fmt.Sprintf("; %.0f/s missed (p99 %s)", above.rate, ms(above.fresh.p99))
	}
	r.measured += fmt.Sprintf("; %d steps in %s", len(steps), took)
	r.verdict = verdict(best.achieved >= 0.95*freshHalf*rawRate)
	return r, nil
}

// nextSearchRate picks the next rate to try from the steps so far, or
// reports that the search is done.
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
		next := hi / 2
		return next, next >= max(1, 0.02*rawRate)
	case hi/lo <= searchClose:
		return 0, false
	default:
		return math.Sqrt(lo * hi), true
	}
}

// freshTargetsOf picks n listings at random as the freshness writes'
// targets.
func freshTargetsOf(ctx context.Context, e *env, n int) ([]*freshTarget, error) {
	rows, _ := e.PG.Query(ctx, `SELECT id::text, seller_id, version, price_minor FROM listings ORDER BY random() LIMIT $1`, n)
	ts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*freshTarget, error) {
		t := &freshTarget{}
		return t, row.Scan(&t.id, &t.seller, &t.version, &t.price)
	})
	if err != nil {
		return nil, fmt.Errorf("pick listings to write: %w", err)
	}
	return ts, nil
}

// measureBigTxn updates every listing of the catalogue in one transaction
// and waits until the CDC process has applied it, watching its memory.
func measureBigTxn(ctx context.Context, e *env, proc *process, n int, rawRate float64, rawRef string) ([]row, error) {
	size, brief := sizeLabel(n), ""
	if n < 1_000_000 {
		brief = " (brief: 1M; -cdc-catalogue)"
	}
	rssRow := row{
		figure: fmt.Sprintf("CDC peak RSS applying 1 txn of %s changed listings%s", size, brief),
		target: fmt.Sprintf("< %s", mib(bigTxnMaxRSS)),
	}
	rateRow := row{
		figure:    fmt.Sprintf("CDC applying 1 txn of %s changed listings%s", size, brief),
		reference: rawRef,
		target:    fmt.Sprintf(">= %.1fx", bigTxnMinRatio),
	}
	broken := func(err error) ([]row, error) {
		for _, r := range []*row{&rssRow, &rateRow} {
			if r.measured == "" {
				r.measured = "broken: see below"
			}
			r.verdict = verdictFail
		}
		return []row{rssRow, rateRow}, err
	}
	timeout := *cdcApplyTimeout
	if timeout <= 0 {
		timeout = max(5*time.Minute, min(time.Hour, time.Duration(3*float64(n)/rawRate*float64(time.Second))))
	}
	limit := int64(*cdcRSSLimitMiB) << 20
	rssBefore, peakBefore, err := proc.memory()
	if err != nil {
		return broken(fmt.Errorf("cdc memory: %w", err))
	}

	progress("cdc vs sink: big transaction: UPDATE of all %d listings in one transaction (CDC RSS %s, peak so far %s)",
		n, mib(rssBefore), mib(peakBefore))
	conn, err := backlogConn(ctx, e)
	if err != nil {
		return broken(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// synchronous_commit as the API has it: the commit is durable when
	// Exec returns, so the WAL position read next is past it.
	if _, err := conn.Exec(ctx, `SET synchronous_commit = on`); err != nil {
		return broken(err)
	}
	t0 := time.Now()
	tag, err := conn.Exec(ctx, `UPDATE listings SET price_minor = price_minor + 1, version = version + 1, updated_at = now()`)
	if err != nil {
		return broken(fmt.Errorf("big transaction: %w", err))
	}
	committed := time.Now()
	if tag.RowsAffected() != int64(n) {
		return broken(fmt.Errorf("big transaction updated %d listings, not %d", tag.RowsAffected(), n))
	}
	target, err := currentLSN(ctx, conn)
	if err != nil {
		return broken(err)
	}
	progress("cdc vs sink: big transaction: committed in %s; waiting up to %s for the CDC to apply it (up to %s)",
		committed.Sub(t0).Round(time.Millisecond), timeout.Round(time.Second), target)

	// Until it is applied: poll the two positions and the memory.
	var (
		peak      = peakBefore
		appliedAt time.Time
		how       string
		stopped   string // why the wait ended without the transaction applied
		lastLog   = time.Now()
	)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			return broken(context.Cause(ctx))
		case <-tick.C:
		}
		if ok, err := proc.running(); !ok {
			rssRow.measured = fmt.Sprintf(">= %s, then the process ended", mib(peak))
			rateRow.measured = fmt.Sprintf("not measured: the CDC ended %s after the commit", time.Since(committed).Round(time.Second))
			return broken(err)
		}
		rss, p, err := proc.memory()
		if err == nil {
			peak = max(peak, p)
		}
		published, confirmed, perr := appliedPositions(ctx, e)
		if perr != nil {
			return broken(perr)
		}
		switch {
		case published >= target:
			appliedAt, how = time.Now(), "the published applied position"
			break wait
		case confirmed >= target:
			appliedAt, how = time.Now(), "the slot's confirmed_flush_lsn"
			break wait
		case err == nil && rss > limit:
			stopped = fmt.Sprintf("its RSS passed the %s -cdc-rss-limit", mib(limit))
			break wait
		case time.Since(committed) > timeout:
			stopped = "not applied within the -cdc-apply-timeout"
			break wait
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			progress("cdc vs sink: big transaction: %s since commit: CDC RSS %s, peak %s; published %s, confirmed %s, target %s",
				time.Since(committed).Round(time.Second), mib(rss), mib(peak), published, confirmed, target)
		}
	}
	if stopped != "" {
		// The wait ended without the transaction applied: the time is a
		// lower bound, which may already prove the target missed.
		waited := time.Since(committed)
		bound := perSecond(int64(n), waited) / rawRate
		progress("cdc vs sink: big transaction: giving up: %s; CDC peak RSS %s; stopping the CDC", stopped, mib(peak))
		// Given up on: no need to let it finish what it holds.
		if err := proc.stop(2 * time.Second); err != nil {
			progress("cdc vs sink: %v", err)
		}
		rssRow.measured = fmt.Sprintf(">= %s (RSS before %s)", mib(peak), mib(rssBefore))
		rssRow.verdict = verdict(false)
		if peak < bigTxnMaxRSS {
			rssRow.measured = fmt.Sprintf("not measured: %s so far, the apply did not finish", mib(peak))
			rssRow.verdict = verdictNotMeasured
		}
		rateRow.measured = fmt.Sprintf("not measured: gave up %s after the commit: %s", waited.Round(time.Second), stopped)
		rateRow.verdict = verdictNotMeasured
		if bound < bigTxnMinRatio {
			// Already slower than the target allows.
			rateRow.ratio = fmt.Sprintf("< %.2fx", bound)
			rateRow.verdict = verdictMiss
		}
		return []row{rssRow, rateRow}, nil
	}
	if _, p, err := proc.memory(); err == nil {
		peak = max(peak, p)
	}
	took := appliedAt.Sub(committed)
	rate := perSecond(int64(n), took)
	progress("cdc vs sink: big transaction: applied %s after its commit (seen by %s): %.0f docs/s; CDC peak RSS %s (before: RSS %s, peak %s)",
		took.Round(time.Millisecond), how, rate, mib(peak), mib(rssBefore), mib(peakBefore))
	rssRow.measured = fmt.Sprintf("%s (RSS before %s)", mib(peak), mib(rssBefore))
	rssRow.verdict = verdict(peak < bigTxnMaxRSS)
	rateRow.measured = fmt.Sprintf("%.0f docs/s (applied %s after commit)", rate, took.Round(100*time.Millisecond))
	rateRow.ratio = times(rate / rawRate)
	rateRow.verdict = verdict(rate/rawRate >= bigTxnMinRatio)
	if err := verifyListingVersions(ctx, e.Reads, e.PG); err != nil {
		rateRow.verdict = verdictFail
		return []row{rssRow, rateRow}, err
	}
	return []row{rssRow, rateRow}, nil
}

// sizeLabel renders a count as 20k or 1M.
func sizeLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return fmt.Sprintf("%gM", float64(n)/1e6)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	default:
		return fmt.Sprint(n)
	}
}
