package system

import (
	"log/slog"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/feed"
)

// NewProjector is the CDC's sink: it rebuilds documents in the read store,
// tombstones their cache keys and announces the applied position.
func NewProjector(cfg config.Config, c *Clients, log *slog.Logger) *projection.Projector {
	p := projection.NewProjector(c.PG, c.Reads, cache.New(c.Redis, cfg.RedisPrefix), c.Redis, cache.AppliedKeysFor(cfg.RedisPrefix), log)
	p.SpillDocs, p.Workers = cfg.CDCSpillDocs, cfg.CDCWorkers
	return p.WithFeedWriter(&projection.FeedWriter{
		Keys:       [2]feed.Keys{feed.KeysFor(cfg.RedisPrefix, feed.Listings), feed.KeysFor(cfg.RedisPrefix, feed.Orders)},
		MaxChanges: cfg.FeedMaxChanges,
		Retention:  cfg.FeedRetention,
	})
}

// NewCDC is one `swapmeet cdc` process: it leads or stands by for the
// slot the projections pointer names (the configured one on a first
// start) and projects what it streams. m may be nil.
func NewCDC(cfg config.Config, c *Clients, log *slog.Logger, m *wal.Metrics) *cdc.Process {
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
