// Package system assembles the running system from a configuration
// (Config, read by LoadConfig): the clients of the backing services, the
// API process (Serve: the use cases, the RPC handler with its
// interceptors, CORS, the web app, the statement timeout, metrics,
// background workers and shutdown), the CDC process (RunCDC) and every
// operator command (Migrate, RebuildProjections, VerifyProjections,
// SlotStatus, DropSlot, SweepMedia). cmd/swapmeet only parses arguments
// and calls these; the integration tests and the benchmarks build the
// system here too, so they run what users run. What tests need to change
// is an option here, not a copy.
package system

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
)

// Clients are the clients of the backing services. Every client connects
// lazily and reconnects by itself, so a service that is down at start or
// restarts later costs errors, not a crash.
type Clients struct {
	PG     *pgxpool.Pool
	Reads  *readstore.Model
	Redis  redis.UniversalClient // a server or a Redis Cluster, as SWAPMEET_REDIS_URL says
	Pages  redis.UniversalClient // search pages: Redis unless SWAPMEET_REDIS_PAGES_URL says otherwise
	Search *search.Store

	mongo *mongo.Client // closed by Close when Open made it
}

// Open connects to every backing service cfg names.
func Open(ctx context.Context, cfg Config) (*Clients, error) {
	pg, err := db.OpenPool(ctx, cfg.PostgresURL, cfg.PGMaxConns)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	mc, err := readstore.Connect(ctx, cfg.MongoURL, cfg.MongoWriteConcern)
	if err != nil {
		pg.Close()
		return nil, err
	}
	rdb, err := cache.Open(cfg.RedisURL)
	if err != nil {
		pg.Close()
		_ = mc.Disconnect(ctx)
		return nil, fmt.Errorf("SWAPMEET_REDIS_URL: %w", err)
	}
	c := &Clients{PG: pg, Reads: readstore.New(mc.Database(cfg.MongoDB)), Redis: rdb, Pages: rdb, mongo: mc}
	c.Reads.BulkSize = cfg.MongoBulkSize
	if c.Search, err = search.Open(ctx, cfg.SearchURL, cfg.Search); err != nil {
		c.Close()
		return nil, fmt.Errorf("SWAPMEET_SEARCH_URL: %w", err)
	}
	if cfg.RedisPagesURL != "" {
		pages, err := cache.Open(cfg.RedisPagesURL)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("SWAPMEET_REDIS_PAGES_URL: %w", err)
		}
		c.Pages = pages
	}
	return c, nil
}

// Close closes what Open opened.
func (c *Clients) Close() {
	c.PG.Close()
	if c.mongo != nil {
		_ = c.mongo.Disconnect(context.Background())
	}
	_ = c.Redis.Close()
	if c.Pages != c.Redis {
		_ = c.Pages.Close()
	}
	if c.Search != nil {
		c.Search.Close()
	}
}
