package system

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/live"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/mediajobs"
	"github.com/swapmeet/swapmeet/internal/password"
	"github.com/swapmeet/swapmeet/internal/ratelimit"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/rpc"
	"github.com/swapmeet/swapmeet/internal/wait"
	"github.com/swapmeet/swapmeet/internal/web"
)

// APIOptions are what tests and benchmarks may change of the API; the
// zero value is what `swapmeet serve` runs.
type APIOptions struct {
	// Password is the argon2id cost; zero means the app's default.
	Password password.Params
	// Cache, if set, adjusts the API's cache after it is built.
	Cache func(*cache.Cache)
	// Media is the object store; nil opens the one cfg names.
	Media *media.Bucket
	// ReadTimeout bounds the reading of a request; zero means 30 s.
	ReadTimeout time.Duration
}

// API is one `swapmeet serve` process.
type API struct {
	App      *app.App
	Registry *prometheus.Registry // the process's metrics
	Health   *Health              // its readiness: the stores, the pointer, the watcher
	// Handler serves /healthz, /readyz, the RPC paths (with CORS for the
	// web origins) and the web app on every other path.
	Handler http.Handler

	cfg     Config
	opts    APIOptions
	clients *Clients
	watcher *cache.Watcher
	live    *live.Hub
	media   *media.Bucket
	jobs    *mediajobs.Jobs
	log     *slog.Logger
}

// NewRegistry returns a Prometheus registry with the Go runtime and
// process series and swapmeet_build_info, for a process's own series to
// join.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newBuildInfoGauge())
	return reg
}

// NewAPI assembles the API over c. Start runs its background work.
func NewAPI(cfg Config, c *Clients, log *slog.Logger, o APIOptions) (*API, error) {
	reg := NewRegistry()
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "swapmeet", Subsystem: "db", Name: "transaction_retries_total",
		Help: "Transactions retried after a serialization failure (40001) or deadlock (40P01).",
	}, []string{"sqlstate"})
	reg.MustRegister(retries)

	store := o.Media
	if store == nil {
		var err error
		if store, err = media.New(cfg.Media); err != nil {
			return nil, err
		}
	}
	pgStore := db.NewStore(c.PG)
	pgStore.OnRetry = func(sqlstate string) { retries.WithLabelValues(sqlstate).Inc() }
	lookups := cache.NewMetrics(reg)
	// The near cache is kept exact by the watcher, which follows the CDC's
	// announcements of what each batch evicted.
	near := cache.NewNear(cfg.NearCache).WithMetrics(reg, lookups)
	watcher := cache.NewWatcher(c.Redis, cache.AppliedKeysFor(cfg.RedisPrefix), log).WithNear(near).
		WithResolve(func(ctx context.Context) { _, _ = c.Reads.Refresh(ctx) })
	ch := cache.New(c.Redis, cfg.RedisPrefix).WithPages(c.Pages).WithMetrics(lookups).WithNear(near).WithLog(log).WithApplied(watcher.Applied)
	ch.PageMaxBytes, ch.PageKeys = cfg.CachePageMaxBytes, cfg.CachePageKeys
	if o.Cache != nil {
		o.Cache(ch)
	}
	a, err := app.New(app.Deps{
		Store:           pgStore,
		Reads:           c.Reads,
		Search:          c.Search,
		Cache:           ch,
		Watcher:         watcher,
		Media:           store,
		Log:             log,
		ConsistencyWait: cfg.ConsistencyWait,
		SessionTTL:      cfg.SessionTTL,
		SessionCacheTTL: cfg.SessionCacheTTL,
		Password:        o.Password,
		Limits:          cfg.Limits,
		Limiter:         ratelimit.New(c.Redis, cfg.RedisPrefix),
	})
	if err != nil {
		return nil, err
	}
	health := storeHealth(c).
		Check("pointer", func(context.Context) error {
			if _, ok := c.Reads.Current(); !ok {
				return errors.New("the projections pointer is not loaded (has a CDC initialised the read side?)")
			}
			return nil
		}).
		Check("watcher", func(context.Context) error {
			if !watcher.Subscribed() {
				return errors.New("not subscribed to the CDC's announcements")
			}
			return nil
		})
	hub := live.NewHub(c.Redis, cfg.RedisPrefix, watcher.Applied, a.Queries, cfg.Watch, log).WithMetrics(live.NewMetrics(reg))
	// One port: RPC paths go to the API (with CORS for the web origins, so
	// the Vite dev server can call it), every other path to the web app.
	api := rpc.NewHandler(a, log, rpc.Options{
		MaxRequestBytes: cfg.MaxRequestBytes,
		Metrics:         rpc.NewMetrics(reg),
		Timeout:         cfg.RequestTimeout,
		ClientIPHeader:  cfg.ClientIPHeader,
		Live:            hub,
		Health:          health.GRPC,
	})
	webApp := web.New()
	if !webApp.Built() {
		log.Warn("this binary has no web app built in; / serves a placeholder (make build embeds it)")
	}
	return &API{
		App: a, Registry: reg, Health: health, Handler: health.Routes(false, web.Mux(web.CORS(cfg.WebOrigins, api), webApp)),
		cfg: cfg, opts: o, clients: c, watcher: watcher, live: hub, media: store, jobs: mediajobs.New(pgStore, store, log), log: log,
	}, nil
}

// Start runs the API's background work until ctx ends: following the
// applied position, the change feed and the projections pointer, purging
// expired sessions, and the media jobs. stop waits for the media jobs.
func (a *API) Start(ctx context.Context) (stop func()) {
	// The projections pointer is loaded before anything is served: until
	// then every name resolves to itself, which after a rebuild is a
	// collection that no longer exists.
	if _, err := a.clients.Reads.Refresh(ctx); err != nil && !errors.Is(err, readstore.ErrNoPointer) {
		a.log.Warn("loading the projections pointer failed; retrying in the background", "err", err)
	}
	go a.watcher.Run(ctx)
	go a.live.Run(ctx)
	// A projections rebuild switches collections by rewriting the pointer:
	// following it picks the switch up within half a second, no restart.
	go a.clients.Reads.Follow(ctx, 500*time.Millisecond)
	go a.App.Commands.RunSessionPurge(ctx, a.cfg.SessionPurgeInterval)
	return a.startMedia(ctx)
}

// HTTPServer returns the server for Handler. It bounds what one
// connection can hold: headers must arrive within 5 s and fit in 64 KiB,
// a request body (each HTTP/2 stream's) must arrive within 30 s and fit
// in MaxRequestBytes plus framing, and an idle connection is closed after
// 2 minutes. Responses get no write timeout: the RPC deadline bounds the
// handlers. The read timeout ends with the request's body, so it does not
// cut a Watch stream either. It speaks HTTP/1.1 and cleartext HTTP/2 (h2c, for gRPC).
func (a *API) HTTPServer() *http.Server {
	readTimeout := a.opts.ReadTimeout
	if readTimeout == 0 {
		readTimeout = 30 * time.Second
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Addr:              a.cfg.HTTPAddr,
		Handler:           http.MaxBytesHandler(a.Handler, int64(a.cfg.MaxRequestBytes)+64<<10),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       readTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		Protocols:         protocols,
	}
}

// Defaults of the media sweeper, in `serve` and in `media sweep`.
const (
	SweepPendingOlderThan = 24 * time.Hour
	SweepOrphanGrace      = time.Hour
	thumbnailIdlePoll     = time.Second
)

// startMedia runs the media background work of an API process until stop
// is called: it waits for the bucket (reporting while the store is down or
// not set up; the API serves everything else meanwhile), makes thumbnails,
// and sweeps.
// Every replica may run it: the thumbnail queue is claimed with SKIP
// LOCKED, and sweeps are idempotent.
func (a *API) startMedia(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.awaitBucket(ctx) })
	wg.Go(func() { a.jobs.RunThumbnails(ctx, thumbnailIdlePoll) })
	wg.Go(func() {
		a.jobs.RunSweeps(ctx, a.cfg.MediaSweepInterval, mediajobs.SweepOptions{PendingOlderThan: SweepPendingOlderThan, OrphanGrace: SweepOrphanGrace})
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// awaitBucket waits until the bucket exists and the API's user may list
// it. serve does not configure the bucket: `swapmeet media setup` does, as
// the object store's administrator, and gives serve a user that can touch
// only the bucket's objects.
func (a *API) awaitBucket(ctx context.Context) {
	backoff := wait.NewBackoff(time.Second, 30*time.Second)
	for {
		err := a.media.Ready(ctx)
		if err == nil {
			a.log.Info("media bucket ready", "bucket", a.cfg.Media.Bucket)
			return
		}
		in := backoff.Next()
		a.log.Warn("media bucket not ready (has `swapmeet media setup` run?); retrying", "bucket", a.cfg.Media.Bucket, "in", in, "err", err)
		if !wait.Sleep(ctx, in) {
			return
		}
	}
}
