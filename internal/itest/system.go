package itest

import (
	"context"
	"net/http/httptest"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/sandbox"
)

// FastPasswords keeps argon2id honest but cheap, so tests can sign up many users.
var FastPasswords = sandbox.FastPasswords

// StartCDC runs the cdc process's loop in this process until the test ends.
func (e *Env) StartCDC(t T) {
	t.Helper()
	e.RunCDC(t, e.CDCProcess())
}

// RunCDC runs p (CDCProcess, perhaps adjusted) in this process until the
// test ends or stop is called, and returns once the read side is
// initialised.
func (e *Env) RunCDC(t T, p *cdc.Process) (stop func()) {
	t.Helper()
	stopCDC, err := e.Sandbox.RunCDC(context.Background(), p)
	if err != nil {
		t.Fatalf("%v", err)
	}
	stop = func() {
		if err := stopCDC(); err != nil {
			t.Errorf("%v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// WaitForSlot returns once the CDC has initialised the read side (created
// its slot, projected what existed, saved the pointer): from then on,
// every commit reaches the read side.
func (e *Env) WaitForSlot(t T) {
	t.Helper()
	if err := e.Sandbox.WaitForSlot(context.Background()); err != nil {
		t.Fatalf("%v", err)
	}
}

// StartAPI serves the API as `swapmeet serve` does (system.NewAPI: the
// handler with its interceptors, CORS and the web app, the HTTP server's
// limits, the background workers), on a free port, until the test ends.
// srv.Client() speaks cleartext HTTP/2 (h2c): use it for both Connect and
// gRPC clients.
func (e *Env) StartAPI(t T) (*httptest.Server, *app.App) {
	t.Helper()
	return e.StartAPIWith(t, APIOptions{})
}

// APIOptions change what StartAPIWith runs; the zero value is StartAPI's.
type APIOptions = sandbox.APIOptions

// StartAPIWith is StartAPI with settings a test needs to change.
func (e *Env) StartAPIWith(t T, o APIOptions) (*httptest.Server, *app.App) {
	t.Helper()
	api, err := e.Sandbox.StartAPI(o)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(api.Close)
	return api.Server, api.App
}
