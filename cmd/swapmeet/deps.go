package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// deps are the clients of the backing services. Every client connects
// lazily and reconnects by itself, so a service that is down at start or
// restarts later costs errors, not a crash.
type deps struct {
	pg    *pgxpool.Pool
	mongo *mongo.Client
	reads *readstore.Store
	redis redis.UniversalClient // a server or a Redis Cluster, as SWAPMEET_REDIS_URL says
	pages redis.UniversalClient // search pages: redis unless SWAPMEET_REDIS_PAGES_URL says otherwise
}

func openDeps(ctx context.Context, cfg config.Config) (*deps, error) {
	pg, err := config.OpenPool(ctx, cfg.PostgresURL, cfg.PGMaxConns)
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
	d := &deps{
		pg:    pg,
		mongo: mc,
		reads: readstore.New(mc.Database(cfg.MongoDB)),
		redis: rdb,
	}
	d.pages = d.redis
	if cfg.RedisPagesURL != "" {
		d.pages, err = cache.Open(cfg.RedisPagesURL)
		if err != nil {
			d.pages = d.redis
			d.Close()
			return nil, fmt.Errorf("SWAPMEET_REDIS_PAGES_URL: %w", err)
		}
	}
	return d, nil
}

func (d *deps) Close() {
	d.pg.Close()
	_ = d.mongo.Disconnect(context.Background())
	_ = d.redis.Close()
	if d.pages != d.redis {
		_ = d.pages.Close()
	}
}
