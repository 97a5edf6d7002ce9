// Package sandbox is an isolated, disposable copy of the system's stores,
// for tests and benchmarks: a fresh Postgres database (migrated), a fresh
// search database (migrated), a fresh Mongo database, a private Redis key prefix and the shared bucket, on the
// services that `make up` starts, all dropped by Close.
package sandbox

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
	"github.com/swapmeet/swapmeet/internal/system"
)

// Hint says how to get the services a sandbox needs.
const Hint = system.ScratchHint

// Sandbox is one private share of the services.
type Sandbox struct {
	PGURL       string // the sandbox's own database
	PG          *pgxpool.Pool
	MongoURL    string
	MongoDB     string
	Mongo       *mongo.Client
	Reads       *readstore.Model
	Search      *search.Store // the sandbox's own search database
	RedisURL    string
	Redis       redis.UniversalClient // a server or a Redis Cluster, as SWAPMEET_REDIS_URL says
	RedisPrefix string
	Media       *media.Bucket // the shared bucket; keys are unique per sandbox
	Slot        string        // a slot name nobody else uses
	Publication string
	Log         *slog.Logger

	scratch *system.Scratch // what a swapmeet process run against this sandbox reads, and the teardown
}

// RandomName is prefix and 12 random hex digits.
func RandomName(prefix string) string { return system.RandomName(prefix) }

// New creates the sandbox's database (migrated), Mongo database and Redis
// prefix on the services the SWAPMEET_* variables name (a system.Scratch).
// log receives the system's logs (nil: discarded). On an error, what was
// created is dropped again.
func New(ctx context.Context, log *slog.Logger) (*Sandbox, error) {
	cfg, err := system.LoadConfig()
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sc, err := system.NewScratch(ctx, cfg, "swapmeet_test_", log)
	if err != nil {
		return nil, err
	}
	c := sc.Config
	return &Sandbox{
		PGURL: c.PostgresURL, PG: sc.PG, MongoURL: c.MongoURL, MongoDB: c.MongoDB, Mongo: sc.Mongo, Reads: sc.Reads, Search: sc.Search,
		RedisURL: c.RedisURL, Redis: sc.Redis, RedisPrefix: c.RedisPrefix, Media: sc.Media,
		Slot: c.Slot, Publication: c.Publication, Log: log, scratch: sc,
	}, nil
}

// Close drops the sandbox's keys, Mongo database and Postgres database (and
// any slot on it), and closes its clients. What runs against the sandbox
// should be stopped first. Close may be called again; it does nothing then.
func (s *Sandbox) Close() error { return s.scratch.Close() }

// Config is the configuration of a swapmeet process run against the sandbox.
//
// A test may point the sandbox at other servers (itest's UseMongo and
// UseRedis replace MongoURL, Reads, RedisURL and Redis): the configuration,
// the clients and the environment follow the sandbox's fields.
func (s *Sandbox) Config() system.Config {
	c := s.scratch.Config
	c.MongoURL, c.RedisURL = s.MongoURL, s.RedisURL
	return c
}

// Clients are the sandbox's clients, as the system assembly takes them.
func (s *Sandbox) Clients() *system.Clients {
	return &system.Clients{PG: s.PG, Reads: s.Reads, Search: s.Search, Redis: s.Redis, Pages: s.Redis}
}

// Cache is the cache the system in the sandbox uses.
func (s *Sandbox) Cache() *cache.Cache { return cache.New(s.Redis, s.RedisPrefix) }

// Environ returns SWAPMEET_* variables that point a swapmeet process at the sandbox.
func (s *Sandbox) Environ() []string {
	return append(s.scratch.Environ(), "SWAPMEET_MONGO_URL="+s.MongoURL, "SWAPMEET_REDIS_URL="+s.RedisURL)
}

// Poll calls cond until it holds, and fails once within has passed (with
// cond's last error) or ctx is done.
func Poll(ctx context.Context, within time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s (last error: %v)", within, what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
