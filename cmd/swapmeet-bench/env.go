package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/swapmeet/swapmeet/internal/sandbox"
)

// env is a suite's own share of the services (a sandbox) and what the
// suite runs on it; all of it goes when the suite ends.
type env struct {
	*sandbox.Sandbox
	teardown []func() error // newest last
}

// withEnv runs fn on a fresh sandbox, then stops what fn started and drops
// the sandbox, however fn ended: an interrupt cancels ctx, fn returns, and
// the databases it created are dropped all the same. A teardown that
// fails fails the suite.
func withEnv(ctx context.Context, fn func(e *env) ([]row, error)) ([]row, error) {
	s, err := sandbox.New(ctx, nil)
	if err != nil {
		return nil, err
	}
	e := &env{Sandbox: s}
	rows, err := fn(e)
	return rows, errors.Join(err, e.close())
}

// onClose has the env's teardown call f, newest first, before the sandbox
// is dropped.
func (e *env) onClose(f func() error) { e.teardown = append(e.teardown, f) }

func (e *env) close() error {
	var errs []error
	for i := len(e.teardown) - 1; i >= 0; i-- {
		errs = append(errs, e.teardown[i]())
	}
	if err := e.Close(); err != nil {
		progress("%v", err)
	}
	return errors.Join(errs...)
}

// startAPI serves the API on the env, as `swapmeet serve` does, until the
// suite ends. The per-seller quotas are off, as the per-client limits are:
// a catalogue's seller has made its listings today, and the bench measures
// speed, not the abuse bounds.
func (e *env) startAPI() (*sandbox.API, error) { return e.startAPIWith(sandbox.APIOptions{}) }

// startAPIWith is startAPI with options.
func (e *env) startAPIWith(o sandbox.APIOptions) (*sandbox.API, error) {
	o.Limits.ListingsPerDay, o.Limits.ActiveListings = -1, -1
	api, err := e.StartAPI(o)
	if err != nil {
		return nil, err
	}
	e.onClose(func() error { api.Close(); return nil })
	return api, nil
}

// startCDC runs the cdc process's loop in this process until the suite
// ends, and returns once the read side is initialised.
func (e *env) startCDC(ctx context.Context) error {
	stop, err := e.RunCDC(ctx, e.CDCProcess())
	if err != nil {
		return err
	}
	e.onClose(stop)
	return nil
}

var started = time.Now()

// progress writes a timestamped line to stderr; stdout is kept for the table.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}
