package system

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swapmeet/swapmeet/db"
)

// ShutdownTimeout is how long serve waits for requests in flight once it
// is told to stop.
const ShutdownTimeout = 15 * time.Second

// Serve is `swapmeet serve`: the API on cfg.HTTPAddr and its metrics on
// cfg.APIMetricsAddr until ctx ends, then a graceful shutdown. Its traces
// go where the OTEL_* variables say (StartTracing), by default nowhere.
func Serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	stopTracing, err := StartTracing(ctx, ServiceAPI, log)
	if err != nil {
		return err
	}
	defer stopTracing()
	c, err := OpenAPI(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	api, err := NewAPI(cfg, c, log, APIOptions{})
	if err != nil {
		return err
	}
	stopMetrics, err := ServeMetrics(cfg.APIMetricsAddr, cfg.Profiles, api.Registry, api.Health, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stopWork := api.Start(ctx)
	defer stopWork()
	srv := api.HTTPServer()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	log.Info("serving", "addr", ln.Addr().String(), "hash_concurrency", api.App.Commands.HashConcurrency())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// OpenAPI is Open for an API process: its Postgres pool is OpenAPIPool's.
func OpenAPI(ctx context.Context, cfg Config) (*Clients, error) {
	cfg.PostgresURL = apiPostgresURL(cfg)
	return Open(ctx, cfg)
}

// OpenAPIPool opens the Postgres pool of an API process. Its statements
// time out after cfg.PGStatementTimeout; the CDC's and the operator
// commands' long reads do not, so only the API's pool has it.
func OpenAPIPool(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	return db.OpenPool(ctx, apiPostgresURL(cfg), cfg.PGMaxConns)
}

func apiPostgresURL(cfg Config) string {
	return db.WithStatementTimeout(cfg.PostgresURL, cfg.PGStatementTimeout)
}

// ServeMetrics exposes reg on addr/metrics, health's /healthz and /readyz
// (with the reasons of failing checks), and with profiles the Go profiles
// on addr/debug/pprof/, until the returned func is called. The address is
// the operators' (loopback by default), never the public one.
func ServeMetrics(addr string, profiles bool, reg *prometheus.Registry, health *Health, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	h := health.Handler(true)
	mux.Handle("/healthz", h)
	mux.Handle("/readyz", h)
	if profiles {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	return func() { _ = srv.Close() }, nil
}
