package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/system"
)

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, _ []string) error {
	// Request transactions get a statement timeout; the CDC's and the
	// operators' long reads do not, so only serve's pool has it.
	cfg.PostgresURL = db.WithStatementTimeout(cfg.PostgresURL, cfg.PGStatementTimeout)
	c, err := system.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	api, err := system.NewAPI(cfg, c, log, system.APIOptions{})
	if err != nil {
		return err
	}
	stopMetrics, err := serveMetrics(cfg.APIMetricsAddr, cfg.Profiles, api.Registry, log)
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
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
