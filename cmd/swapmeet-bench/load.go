package main

import (
	"context"
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

// hammer runs clients goroutines that call call back to back for d, and
// times each call. call learns which goroutine (0..clients-1) calls it,
// and returns false when there is no work left. The first error stops the
// run and is returned: a benchmark of failing calls measures nothing. A
// call that fails because the run was stopped is no news.
func hammer(parent context.Context, clients int, d time.Duration, call func(ctx context.Context, worker int) (bool, error)) (rateResult, error) {
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
