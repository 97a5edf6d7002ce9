package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/system"
)

func runCDC(ctx context.Context, cfg config.Config, log *slog.Logger, _ []string) error {
	c, err := system.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()

	reg := system.NewRegistry()
	metrics := wal.NewMetrics(reg)
	stopMetrics, err := serveMetrics(cfg.CDCMetricsAddr, cfg.Profiles, reg, log)
	if err != nil {
		return err
	}
	defer stopMetrics()

	p := system.NewCDC(cfg, c, log, metrics)
	go watchSlot(ctx, c, cfg, metrics, log)
	err = p.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	switch {
	case errors.Is(err, wal.ErrSlotLost):
		log.Error("the replication slot is gone, so changes may have been lost and the CDC will not guess; "+
			"rebuild the read side from Postgres with 'swapmeet projections rebuild', then start the CDC again", "err", err)
		return exitError(exitSlotLost)
	case errors.Is(err, wal.ErrSetup):
		log.Error("Postgres refuses to stream the slot for a reason that retrying will not cure; the slot and "+
			"its changes are intact: fix the setup (publication, role privileges, wal_level) and start the CDC again", "err", err)
		return exitError(exitSetup)
	}
	return err
}

// Exit statuses of `swapmeet cdc` that tell an operator (or a supervisor)
// what to do next.
const (
	exitSlotLost = 3 // rebuild the read side
	exitSetup    = 4 // fix the replication setup; nothing is lost
)

// watchSlot exports the slot's retained WAL and warns when it grows past
// the threshold: the sign of a CDC that stopped or cannot keep up.
func watchSlot(ctx context.Context, c *system.Clients, cfg config.Config, m *wal.Metrics, log *slog.Logger) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		slot := cfg.Slot
		if p, ok := c.Reads.Current(); ok {
			slot = p.Slot
		}
		s, err := wal.ReadSlotStatus(ctx, c.PG, slot)
		if err != nil {
			continue
		}
		m.Slot(s)
		if s.RetainedBytes > cfg.SlotWarnBytes {
			log.Warn("the slot retains a lot of WAL", "slot", slot, "retained_bytes", s.RetainedBytes, "threshold", cfg.SlotWarnBytes)
		}
	}
}

// serveMetrics exposes reg on addr/metrics, and with profiles the Go
// profiles on addr/debug/pprof/, until the returned func is called. The
// address is the operators' (loopback by default), never the public one.
func serveMetrics(addr string, profiles bool, reg *prometheus.Registry, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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
