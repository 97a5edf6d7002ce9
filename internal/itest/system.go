package itest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/live"
	"github.com/swapmeet/swapmeet/internal/password"
	"github.com/swapmeet/swapmeet/internal/system"
)

// FastPasswords keeps argon2id honest but cheap, so tests can sign up many users.
var FastPasswords = password.Params{MemoryKiB: 1024, Time: 1, Threads: 1}

// Cache returns the cache the system under test uses.
func (e *Env) Cache() *cache.Cache { return cache.New(e.Redis, e.RedisPrefix) }

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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	e.WaitForSlot(t)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("cdc: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("cdc did not stop within 10s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Projector is the sink the CDC uses, for tests that drive readers themselves.
func (e *Env) Projector() *projection.Projector {
	return system.NewProjector(e.cfg, e.Clients(), e.Log)
}

// CDCProcess is what `swapmeet cdc` runs, wired to this Env.
func (e *Env) CDCProcess() *cdc.Process { return system.NewCDC(e.cfg, e.Clients(), e.Log, nil) }

// WaitForSlot returns once the CDC has initialised the read side (created
// its slot, projected what existed, saved the pointer): from then on,
// every commit reaches the read side.
func (e *Env) WaitForSlot(t T) {
	t.Helper()
	Eventually(t, 30*time.Second, "the read side to be initialised", func() (bool, error) {
		_, err := e.Reads.LoadPointer(context.Background())
		return err == nil, err
	})
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
type APIOptions struct {
	// Password is the argon2id cost; zero means FastPasswords.
	Password password.Params
	// Limits are the app's limits. Zero fields take the app's defaults,
	// except the per-client ones: tests make many calls from one address,
	// so those are off unless set.
	Limits app.Limits
	// Timeout is the server's deadline for unary RPCs (0: none).
	Timeout time.Duration
	// ClientIPHeader is the trusted proxy's client-address header.
	ClientIPHeader string
	// Cache, if set, adjusts the API's cache (page budget, pages client).
	Cache func(*cache.Cache)
	// Watch, if set, adjusts the Watch streams' limits.
	Watch func(*live.Options)
	// ReadTimeout is the HTTP server's; zero means serve's.
	ReadTimeout time.Duration
}

// StartAPIWith is StartAPI with settings a test needs to change.
func (e *Env) StartAPIWith(t T, o APIOptions) (*httptest.Server, *app.App) {
	t.Helper()
	if o.Password == (password.Params{}) {
		o.Password = FastPasswords
		if o.Limits.HashConcurrency == 0 {
			// Cheap hashes need little memory: let concurrent tests sign
			// up without queueing for the one slot two cores would get.
			o.Limits.HashConcurrency = 32
		}
	}
	for _, n := range []*int{&o.Limits.SignInPerClient, &o.Limits.SignUpPerClient, &o.Limits.WritesPerClient} {
		if *n == 0 {
			*n = -1
		}
	}
	cfg := e.cfg
	cfg.Limits, cfg.RequestTimeout, cfg.ClientIPHeader = o.Limits, o.Timeout, o.ClientIPHeader
	if o.Watch != nil {
		o.Watch(&cfg.Watch)
	}
	api, err := system.NewAPI(cfg, e.Clients(), e.Log, system.APIOptions{Password: o.Password, Cache: o.Cache, Media: e.Media, ReadTimeout: o.ReadTimeout})
	if err != nil {
		t.Fatalf("%v", err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = api.HTTPServer()
	srv.Start()
	clientProtocols := new(http.Protocols)
	clientProtocols.SetUnencryptedHTTP2(true)
	srv.Client().Transport = &http.Transport{Protocols: clientProtocols, MaxIdleConnsPerHost: 64}
	t.Cleanup(srv.Close)
	// Stopped before the server closes (cleanups run last first): open
	// Watch streams end with the API's work, as in serve's shutdown.
	ctx, cancel := context.WithCancel(context.Background())
	stop := api.Start(ctx)
	t.Cleanup(func() { cancel(); stop() })
	return srv, api.App
}
