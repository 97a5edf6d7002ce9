package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"time"
)

// Commit to delivery, in the freshness run itself: WatchListing streams
// on -watch-listings of the listings the freshness driver edits, against
// the same API, time each of their writes from its commit until a stream
// delivers its version (or a newer one); the row sits next to the
// freshness figure of the same writes.

var watchListings = flag.Int("watch-listings", 1000, "listings of the freshness writes that a WatchListing stream follows each, for the commit-to-delivery figure (0: none)")

// deliveryMaxOverFresh: the target wants commit-to-delivery p99 within this
// of the freshness p99 of the same run.
const deliveryMaxOverFresh = 50 * time.Millisecond

// freshWatch is the streams on the freshness targets.
type freshWatch struct {
	set     *subscribers
	clock   *deliveryClock
	watched int
	of      int
	closed  func() error
}

// deliveries is what the streams saw of one run of the freshness driver.
type deliveries struct {
	lat         latencies
	fresh       latencies // the freshness of the same writes
	undelivered int
}

// watchFreshTargets opens a stream on each of the first -watch-listings
// targets; nil with -watch-listings 0.
func watchFreshTargets(ctx context.Context, url string, targets []*freshTarget) (*freshWatch, error) {
	n := min(*watchListings, len(targets))
	if n <= 0 {
		return nil, nil
	}
	ids := make([]string, n)
	for i, t := range targets[:n] {
		ids[i] = t.id
	}
	clock := newDeliveryClock(ids)
	progress("cdc vs sink: commit to delivery: a WatchListing stream on each of %d of the %d listings written", n, len(targets))
	set, err := openStreams(ctx, url, ids, "cdc vs sink: commit to delivery", clock.delivered)
	if err != nil {
		return nil, err
	}
	return &freshWatch{set: set, clock: clock, watched: n, of: len(targets), closed: sync.OnceValue(set.close)}, nil
}

// during times the watched writes of run.
func (w *freshWatch) during(ctx context.Context, d *freshDriver, run func() (freshStep, error)) (freshStep, deliveries, error) {
	if w == nil {
		s, err := run()
		return s, deliveries{}, err
	}
	w.clock.start()
	d.onCommit, d.onVisible = w.clock.committed, w.clock.visible
	s, err := run()
	d.onCommit, d.onVisible = nil, nil
	lat, fresh, undelivered := w.clock.stop(ctx, freshWait)
	got := deliveries{lat: summarize(lat), fresh: summarize(fresh), undelivered: undelivered}
	progress("cdc vs sink: commit to delivery: %d writes delivered: p50 %s, p99 %s, max %s; %d not delivered in %s; the same writes' freshness p50 %s, p99 %s",
		got.lat.n, ms(got.lat.p50), ms(got.lat.p99), ms(got.lat.max), undelivered, freshWait, ms(got.fresh.p50), ms(got.fresh.p99))
	if err == nil {
		err = w.set.failed()
	}
	return s, got, err
}

// row sets commit to delivery against the freshness of the same run.
func (w *freshWatch) row(got deliveries, fresh freshStep) row {
	over := got.lat.p99 - fresh.fresh.p99
	measured := fmt.Sprintf("p50 %s, p99 %s over %d writes", ms(got.lat.p50), ms(got.lat.p99), got.lat.n)
	if got.undelivered > 0 {
		measured += fmt.Sprintf(", %d not delivered in %s", got.undelivered, freshWait)
	}
	return row{
		figure:   fmt.Sprintf("WatchListing commit to delivery, same run (%d of %d listings watched)", w.watched, w.of),
		measured: measured,
		reference: fmt.Sprintf("freshness p50 %s, p99 %s (of these writes: p50 %s, p99 %s)",
			ms(fresh.fresh.p50), ms(fresh.fresh.p99), ms(got.fresh.p50), ms(got.fresh.p99)),
		ratio:   fmt.Sprintf("p99 %+.1f ms", float64(over)/float64(time.Millisecond)),
		target:  fmt.Sprintf("p99 <= freshness p99 + %d ms", deliveryMaxOverFresh.Milliseconds()),
		verdict: verdict(got.lat.n > 0 && got.undelivered == 0 && over <= deliveryMaxOverFresh),
	}
}

// close ends the streams; it may be called more than once.
func (w *freshWatch) close() error {
	if w == nil {
		return nil
	}
	return w.closed()
}
