package system

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/feed"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// NewProjector is the CDC's sink: it rebuilds documents in the read store
// and the rows of the listings, orders and reviews in the search store, tombstones their cache keys
// and announces the applied position.
func NewProjector(cfg Config, c *Clients, log *slog.Logger) *projection.Projector {
	p := projection.NewProjector(c.PG, c.Reads, cache.New(c.Redis, cfg.RedisPrefix), c.Redis, cache.AppliedKeysFor(cfg.RedisPrefix), log)
	p.SpillDocs, p.Workers = cfg.CDCSpillDocs, cfg.CDCWorkers
	if c.Search != nil {
		p.WithSearch(c.Search)
	}
	return p.WithFeedWriter(&projection.FeedWriter{
		Keys:       [2]feed.Keys{feed.KeysFor(cfg.RedisPrefix, feed.Listings), feed.KeysFor(cfg.RedisPrefix, feed.Orders)},
		MaxChanges: cfg.FeedMaxChanges,
		Retention:  cfg.FeedRetention,
	})
}

// NewCDC is one `swapmeet cdc` process: it leads or stands by for the
// slot the projections pointer names (the configured one on a first
// start) and projects what it streams. m may be nil.
func NewCDC(cfg Config, c *Clients, log *slog.Logger, m *wal.Metrics) *cdc.Process {
	return &cdc.Process{
		Reader: wal.Config{
			ConnString:  cfg.PostgresURL,
			Publication: cfg.Publication,
			Log:         log,
			Metrics:     m,
		},
		Slot:  cfg.Slot,
		PG:    c.PG,
		Reads: c.Reads,
		Sink:  NewProjector(cfg, c, log).WithMetrics(m),
		Log:   log,
	}
}

// RunCDC is `swapmeet cdc`: the CDC process with its metrics on
// cfg.CDCMetricsAddr and its traces where the OTEL_* variables say
// (StartTracing), until ctx ends (then it returns nil) or the
// process fails (wal.ErrSlotLost and wal.ErrSetup say what to do next).
func RunCDC(ctx context.Context, cfg Config, log *slog.Logger) error {
	stopTracing, err := StartTracing(ctx, ServiceCDC, log)
	if err != nil {
		return err
	}
	defer stopTracing()
	c, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	// The search store is initialised like the read store, by the CDC
	// that writes it (and by `swapmeet migrate`); Migrate is idempotent.
	if err := c.Search.Migrate(ctx); err != nil {
		return err
	}
	reg := NewRegistry()
	metrics := wal.NewMetrics(reg)
	health := storeHealth(c).
		Check("replication", func(context.Context) error {
			if s := metrics.State(); s.Halted != "" {
				return errors.New(s.Halted)
			} else if s.Role == wal.RoleConnecting {
				return errors.New("neither streaming the slot nor standing by for it (connecting, or the last stream failed)")
			}
			return nil
		}).
		Details(func() map[string]any {
			s := metrics.State()
			return map[string]any{"role": s.Role.String(), "lag_bytes": s.LagBytes, "applied": s.Applied.String()}
		})
	stopMetrics, err := ServeMetrics(cfg.CDCMetricsAddr, cfg.Profiles, reg, health, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	go watchSlot(ctx, c, cfg, metrics, log)
	go keepHistory(ctx, c, cfg, log)
	err = NewCDC(cfg, c, log, metrics).Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// keepHistory creates the history's month partitions ahead of their first
// write and drops the months past the retention, hourly. Both are
// idempotent: a standby does them too, harmlessly.
func keepHistory(ctx context.Context, c *Clients, cfg Config, log *slog.Logger) {
	wait.Every(ctx, time.Hour, func(ctx context.Context) {
		now := time.Now()
		if err := c.Search.EnsureHistoryPartitions(ctx, now); err != nil {
			log.Warn("history partitions", "err", err)
		}
		if cfg.HistoryRetention <= 0 {
			return
		}
		dropped, err := c.Search.PruneHistory(ctx, now.Add(-cfg.HistoryRetention))
		if err != nil {
			log.Warn("history retention", "err", err)
		}
		if len(dropped) > 0 {
			log.Info("history retention: dropped months", "partitions", dropped, "retention", cfg.HistoryRetention)
		}
	})
}

// watchSlot exports the slot's retained WAL and warns when it grows past
// the threshold: the sign of a CDC that stopped or cannot keep up.
func watchSlot(ctx context.Context, c *Clients, cfg Config, m *wal.Metrics, log *slog.Logger) {
	wait.Every(ctx, 15*time.Second, func(ctx context.Context) {
		slot := cfg.Slot
		if p, ok := c.Reads.Current(); ok {
			slot = p.Slot
		}
		s, err := wal.ReadSlotStatus(ctx, c.PG, slot)
		if err != nil {
			return
		}
		m.Slot(s)
		if s.RetainedBytes > cfg.SlotWarnBytes {
			log.Warn("the slot retains a lot of WAL", "slot", slot, "retained_bytes", s.RetainedBytes, "threshold", cfg.SlotWarnBytes)
		}
	})
}
