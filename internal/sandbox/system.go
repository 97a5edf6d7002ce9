package sandbox

import (
	"context"
	"errors"
	"fmt"
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

// FastPasswords keeps argon2id honest but cheap, so that many users can
// sign up.
var FastPasswords = password.Params{MemoryKiB: 1024, Time: 1, Threads: 1}

// Projector is the sink the CDC uses, for callers that drive readers
// themselves.
func (s *Sandbox) Projector() *projection.Projector {
	return system.NewProjector(s.Config(), s.Clients(), s.Log)
}

// CDCProcess is what `swapmeet cdc` runs, wired to the sandbox.
func (s *Sandbox) CDCProcess() *cdc.Process {
	return system.NewCDC(s.Config(), s.Clients(), s.Log, nil)
}

// RunCDC runs p (CDCProcess, perhaps adjusted) in this process until stop
// is called, and returns once the read side is initialised. stop may be
// called more than once; it reports how the CDC ended the first time.
func (s *Sandbox) RunCDC(ctx context.Context, p *cdc.Process) (stop func() error, err error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("cdc: %w", err)
			}
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("cdc did not stop within 10s")
		}
	})
	if err := s.WaitForSlot(ctx); err != nil {
		return nil, errors.Join(err, stop())
	}
	return stop, nil
}

// WaitForSlot returns once the CDC has initialised the read side (created
// its slot, projected what existed, saved the pointer): from then on,
// every commit reaches the read side.
func (s *Sandbox) WaitForSlot(ctx context.Context) error {
	return Poll(ctx, 30*time.Second, "the read side to be initialised", func() (bool, error) {
		_, err := s.Reads.LoadPointer(ctx)
		return err == nil, err
	})
}

// APIOptions change what StartAPI runs; the zero value runs the API as
// `swapmeet serve` does, with FastPasswords and no per-client limits.
type APIOptions struct {
	// Password is the argon2id cost; zero means FastPasswords.
	Password password.Params
	// Limits are the app's limits. Zero fields keep the configured ones
	// (the app's defaults), except the per-client counts and the renames
	// per user: tests and benchmarks make many calls from one address and
	// rename often, so those are off unless set. A negative count
	// switches a limit off too.
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

// API is the API served on a free port, as StartAPI started it.
type API struct {
	// Server's Client() speaks cleartext HTTP/2 (h2c): use it for both
	// Connect and gRPC clients.
	Server *httptest.Server
	App    *app.App
	stop   func()
}

// Close stops the API's background work, which ends its Watch streams as
// serve's shutdown does, then the server.
func (a *API) Close() { a.stop(); a.Server.Close() }

// StartAPI serves the API as `swapmeet serve` does (system.NewAPI: the
// handler with its interceptors, CORS and the web app, the HTTP server's
// limits, the background workers), on a free port, until Close.
func (s *Sandbox) StartAPI(o APIOptions) (*API, error) {
	if o.Password == (password.Params{}) {
		o.Password = FastPasswords
		if o.Limits.HashConcurrency == 0 {
			// Cheap hashes need little memory: let concurrent callers sign
			// up without queueing for the one slot two cores would get.
			o.Limits.HashConcurrency = 32
		}
	}
	cfg := s.Config()
	cfg.Limits = overlay(cfg.Limits, o.Limits)
	cfg.RequestTimeout, cfg.ClientIPHeader = o.Timeout, o.ClientIPHeader
	if o.Watch != nil {
		o.Watch(&cfg.Watch)
	}
	// The API's own pool, as serve's: with the statement timeout.
	ctx, cancel := context.WithCancel(context.Background())
	pg, err := system.OpenAPIPool(context.Background(), cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	clients := s.Clients()
	clients.PG = pg
	api, err := system.NewAPI(cfg, clients, s.Log, system.APIOptions{Password: o.Password, Cache: o.Cache, Media: s.Media, ReadTimeout: o.ReadTimeout})
	if err != nil {
		cancel()
		pg.Close()
		return nil, err
	}
	stop := api.Start(ctx)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = api.HTTPServer()
	srv.Start()
	clientProtocols := new(http.Protocols)
	clientProtocols.SetUnencryptedHTTP2(true)
	srv.Client().Transport = &http.Transport{Protocols: clientProtocols, MaxIdleConnsPerHost: 64}
	return &API{Server: srv, App: api.App, stop: func() { cancel(); stop(); pg.Close() }}, nil
}

// overlay is base with the non-zero fields of set; the per-client counts
// and the renames per user are set's, so off unless set.
func overlay(base, set app.Limits) app.Limits {
	pick := func(v *int, s int) {
		if s != 0 {
			*v = s
		}
	}
	pick(&base.SignInPerEmail, set.SignInPerEmail)
	pick(&base.ListingsPerDay, set.ListingsPerDay)
	pick(&base.ActiveListings, set.ActiveListings)
	pick(&base.PendingUploads, set.PendingUploads)
	pick(&base.HashConcurrency, set.HashConcurrency)
	if set.Window != 0 {
		base.Window = set.Window
	}
	if set.HashWait != 0 {
		base.HashWait = set.HashWait
	}
	base.SignInPerClient, base.SignUpPerClient, base.WritesPerClient = set.SignInPerClient, set.SignUpPerClient, set.WritesPerClient
	base.QueriesPerClient, base.StreamOpensPerClient, base.RenamesPerUser = set.QueriesPerClient, set.StreamOpensPerClient, set.RenamesPerUser
	return base
}
