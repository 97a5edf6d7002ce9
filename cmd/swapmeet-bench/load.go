package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// rateResult is what a fixed-duration closed-loop run observed.
type rateResult struct {
	calls     int
	elapsed   time.Duration
	lat       latencies
	exhausted bool // the work ran out before the time was up
}

func (r rateResult) rate() float64 { return perSecond(int64(r.calls), r.elapsed) }

// String reads like "1169/s, p50 0.6 ms, p99 19.7 ms".
func (r rateResult) String() string {
	return fmt.Sprintf("%.0f/s, p50 %s, p99 %s", r.rate(), ms(r.lat.p50), ms(r.lat.p99))
}

// callFunc is one call of a load: see hammer.
type callFunc func(ctx context.Context, worker int) (bool, error)

// warmupFor is how long a load runs unmeasured first, so that connections
// and pools are open when measuring starts: pgbench, too, excludes its
// connection time.
func warmupFor(d time.Duration) time.Duration { return min(time.Second, d/5) }

// load runs call from clients goroutines for warmupFor(d) unmeasured, then
// for d measured, and logs what it measured as what.
func load(ctx context.Context, what string, clients int, d time.Duration, call callFunc) (warm, res rateResult, err error) {
	progress("%s, %d clients, %s after a %s warm-up", what, clients, d, warmupFor(d))
	if warm, err = hammer(ctx, clients, warmupFor(d), call); err != nil {
		return warm, res, fmt.Errorf("warm-up: %w", err)
	}
	if res, err = hammer(ctx, clients, d, call); err != nil {
		return warm, res, err
	}
	progress("%s: %d calls in %s: %s, max %s", what, res.calls, res.elapsed.Round(time.Millisecond), res, ms(res.lat.max))
	return warm, res, nil
}

// pool hands out each item once, to whichever client asks next.
type pool[T any] struct {
	items []T
	next  atomic.Int64
}

// eachOnce is a load that calls f on each item of p once, from whichever
// worker asks next, until p runs out.
func eachOnce[T any](p *pool[T], f func(ctx context.Context, worker int, item T) error) callFunc {
	return func(ctx context.Context, worker int) (bool, error) {
		item, ok := p.take()
		if !ok {
			return false, nil
		}
		err := f(ctx, worker, item)
		return err == nil, err
	}
}

func (p *pool[T]) take() (T, bool) {
	i := p.next.Add(1) - 1
	if i >= int64(len(p.items)) {
		var zero T
		return zero, false
	}
	return p.items[i], true
}

// hammer runs clients goroutines that call call back to back for d, and
// times each call. call learns which goroutine (0..clients-1) calls it,
// and returns false when there is no work left. The first error stops the
// run and is returned: a benchmark of failing calls measures nothing. A
// call that fails because the run was stopped is no news.
func hammer(parent context.Context, clients int, d time.Duration, call callFunc) (rateResult, error) {
	ctx, stop := context.WithCancel(parent)
	defer stop()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		all       []time.Duration
		firstErr  error
		exhausted atomic.Bool
	)
	start := time.Now()
	deadline := start.Add(d)
	for worker := range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			var err error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				ok, cerr := call(ctx, worker)
				took := time.Since(t0)
				if cerr != nil {
					if ctx.Err() == nil {
						err = cerr
					}
					break
				}
				if !ok {
					exhausted.Store(true)
					break
				}
				lat = append(lat, took)
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lat...)
			if err != nil && firstErr == nil {
				firstErr = err
				stop()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr == nil && parent.Err() != nil {
		firstErr = context.Cause(parent)
	}
	return rateResult{calls: len(all), elapsed: elapsed, lat: summarize(all), exhausted: exhausted.Load()}, firstErr
}
