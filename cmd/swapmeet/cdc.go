package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/consistency"
)

func runCDC(ctx context.Context, cfg config.Config, log *slog.Logger, _ []string) error {
	d, err := openDeps(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := cdc.NewMetrics(reg)
	stopMetrics, err := serveMetrics(cfg.CDCMetricsAddr, reg, log)
	if err != nil {
		return err
	}
	defer stopMetrics()

	// Indexes first: a read store that cannot take them now will not take
	// documents either, and the reader would only retry.
	for {
		if err := d.reads.EnsureIndexes(ctx); err == nil {
			break
		} else if ctx.Err() != nil {
			return nil
		} else {
			log.Warn("read store not ready; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}

	sink := cdc.NewProjector(d.pg, d.reads, cache.New(d.redis, cfg.RedisPrefix),
		d.redis, consistency.KeysFor(cfg.RedisPrefix), log)
	r := cdc.NewReader(cdc.Config{
		ConnString:  cfg.PostgresURL,
		Slot:        cfg.Slot,
		Publication: cfg.Publication,
		Log:         log,
		Metrics:     metrics,
	}, sink)
	err = r.Run(ctx)
	if errors.Is(err, cdc.ErrSlotLost) {
		log.Error("the replication slot is gone, so changes may have been lost; "+
			"rebuild the read side from Postgres with 'swapmeet projections rebuild'", "slot", cfg.Slot, "err", err)
	}
	return err
}

// serveMetrics exposes reg on addr/metrics until the returned func is called.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	return func() { _ = srv.Close() }, nil
}
