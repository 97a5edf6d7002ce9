package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swapmeet/swapmeet/internal/itest"
)

// runner plays the part of *testing.T for the integration harness, so the
// benchmark sets up the services exactly as the tests do.
type runner struct {
	mu       sync.Mutex
	cleanups []func()
	errored  atomic.Bool
	exiting  atomic.Bool
}

var _ itest.T = (*runner)(nil)

func newRunner() *runner { return &runner{} }

func (r *runner) Helper() {}

// Cleanup registers f to run when the current suite ends, or before the
// process exits on a fatal error.
func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *runner) Logf(format string, args ...any) { progress(format, args...) }

// Errorf records a failure and carries on, as testing.T does.
func (r *runner) Errorf(format string, args ...any) {
	r.errored.Store(true)
	progress("error: "+format, args...)
}

// Fatalf runs every registered cleanup, newest first, and exits 1. Only
// the first fatal error exits; any goroutine that fails meanwhile stops
// where it is, so the cleanups run once.
func (r *runner) Fatalf(format string, args ...any) {
	progress("fatal: "+format, args...)
	if !r.exiting.CompareAndSwap(false, true) {
		runtime.Goexit()
	}
	r.runCleanups(0)
	os.Exit(1)
}

func (r *runner) failed() bool { return r.errored.Load() }

// scope runs fn and then the cleanups fn registered, like a subtest.
func (r *runner) scope(fn func()) {
	r.mu.Lock()
	mark := len(r.cleanups)
	r.mu.Unlock()
	defer r.runCleanups(mark)
	fn()
}

// runCleanups pops and runs cleanups until only the first mark remain. It
// pops one at a time under the lock, so a fatal error on another goroutine
// never runs a cleanup twice.
func (r *runner) runCleanups(mark int) {
	for {
		r.mu.Lock()
		n := len(r.cleanups)
		if n <= mark {
			r.mu.Unlock()
			return
		}
		f := r.cleanups[n-1]
		r.cleanups = r.cleanups[:n-1]
		r.mu.Unlock()
		f()
	}
}

var started = time.Now()

// progress writes a timestamped line to stderr; stdout is kept for the table.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}
