package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/ratelimit"
	"github.com/swapmeet/swapmeet/internal/rpc"
	"github.com/swapmeet/swapmeet/internal/web"
)

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, _ []string) error {
	// Request transactions get a statement timeout; the CDC's and the
	// operators' long reads do not, so only serve's pool has it.
	cfg.PostgresURL = config.WithStatementTimeout(cfg.PostgresURL, cfg.PGStatementTimeout)
	d, err := openDeps(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()

	reg := newRegistry()
	stopMetrics, err := serveMetrics(cfg.APIMetricsAddr, reg, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "swapmeet", Subsystem: "db", Name: "transaction_retries_total",
		Help: "Transactions retried after a serialization failure (40001) or deadlock (40P01).",
	}, []string{"sqlstate"})
	reg.MustRegister(retries)

	watcher := consistency.NewWatcher(d.redis, consistency.KeysFor(cfg.RedisPrefix), log)
	go watcher.Run(ctx)
	// A projections rebuild switches collections by rewriting the pointer:
	// following it picks the switch up within half a second, no restart.
	go d.reads.Follow(ctx, 500*time.Millisecond)

	mediaStore, err := media.New(cfg.MediaConfig())
	if err != nil {
		return err
	}
	store := db.NewStore(d.pg)
	store.OnRetry = func(sqlstate string) { retries.WithLabelValues(sqlstate).Inc() }
	a, err := app.New(app.Deps{
		Store:           store,
		Reads:           d.reads,
		Cache:           newCache(d, cfg).WithMetrics(cache.NewMetrics(reg)),
		Watcher:         watcher,
		Media:           mediaStore,
		Log:             log,
		ConsistencyWait: cfg.ConsistencyWait,
		SessionTTL:      cfg.SessionTTL,
		SessionCacheTTL: cfg.SessionCacheTTL,
		Limits:          cfg.Limits,
		Limiter:         ratelimit.New(d.redis, cfg.RedisPrefix),
	})
	if err != nil {
		return err
	}

	go a.Commands.RunSessionPurge(ctx, cfg.SessionPurgeInterval)
	stopMedia := startMedia(ctx, cfg, log, a, mediaStore) // bucket bootstrap, thumbnails, sweeps
	defer stopMedia()

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // gRPC without TLS (h2c)
	// One port: RPC paths go to the API (with CORS for the web origins, so
	// the Vite dev server can call it), every other path to the web app.
	api := rpc.NewHandler(a, log, rpc.Options{
		MaxRequestBytes: cfg.MaxRequestBytes,
		Metrics:         rpc.NewMetrics(reg),
		Timeout:         cfg.RequestTimeout,
		ClientIPHeader:  cfg.ClientIPHeader,
	})
	webApp := web.New()
	if !webApp.Built() {
		log.Warn("this binary has no web app built in; / serves a placeholder (make build embeds it)")
	}
	srv := newHTTPServer(cfg, web.Mux(web.CORS(cfg.WebOrigins, api), webApp))
	srv.Protocols = protocols
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	log.Info("serving", "addr", ln.Addr().String(), "hash_concurrency", a.Commands.HashConcurrency())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHTTPServer bounds what one connection can hold: headers must arrive
// within 5 s and fit in 64 KiB, a request body (each HTTP/2 stream's) must
// arrive within 30 s and fit in MaxRequestBytes plus framing, and an idle
// connection is closed after 2 minutes. Responses get no write timeout:
// the RPC deadline bounds the handlers.
func newHTTPServer(cfg config.Config, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           http.MaxBytesHandler(h, int64(cfg.MaxRequestBytes)+64<<10),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// newCache is the API's cache: documents and generations on the main
// Redis, search pages where SWAPMEET_REDIS_PAGES_URL says, within budget.
func newCache(d *deps, cfg config.Config) *cache.Cache {
	c := cache.New(d.redis, cfg.RedisPrefix).WithPages(d.pages)
	c.PageMaxBytes, c.PageKeys = cfg.CachePageMaxBytes, cfg.CachePageKeys
	return c
}
