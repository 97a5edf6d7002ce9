// Package sandbox is an isolated, disposable copy of the system's stores,
// for tests and benchmarks: a fresh Postgres database (migrated), a fresh
// Mongo database, a private Redis key prefix and the shared bucket, on the
// services that `make up` starts, all dropped by Close.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/system"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// Hint says how to get the services a sandbox needs.
const Hint = "start the local services with `make up` (or point SWAPMEET_* at running ones)"

// Sandbox is one private share of the services.
type Sandbox struct {
	PGURL       string // the sandbox's own database
	PG          *pgxpool.Pool
	MongoURL    string
	MongoDB     string
	Mongo       *mongo.Client
	Reads       *readstore.Model
	RedisURL    string
	Redis       redis.UniversalClient // a server or a Redis Cluster, as SWAPMEET_REDIS_URL says
	RedisPrefix string
	Media       *media.Bucket // the shared bucket; keys are unique per sandbox
	Slot        string        // a slot name nobody else uses
	Publication string
	Log         *slog.Logger

	cfg system.Config // what a swapmeet process run against this sandbox reads

	mu      sync.Mutex
	closers []func() error // newest last
}

// RandomName is prefix and 12 random hex digits.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// New creates the sandbox's database (migrated), Mongo database and Redis
// prefix on the services the SWAPMEET_* variables name. log receives the
// system's logs (nil: discarded). On an error, what was created is
// dropped again.
func New(ctx context.Context, log *slog.Logger) (_ *Sandbox, err error) {
	cfg, err := system.LoadConfig()
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	name := RandomName("swapmeet_test_")
	s := &Sandbox{
		MongoURL:    cfg.MongoURL,
		MongoDB:     name,
		RedisURL:    cfg.RedisURL,
		RedisPrefix: name + ":",
		Slot:        name,
		Publication: cfg.Publication,
		Log:         log,
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	s.cfg = cfg
	s.cfg.MongoDB, s.cfg.RedisPrefix, s.cfg.Slot = s.MongoDB, s.RedisPrefix, s.Slot

	if s.Media, err = media.New(cfg.Media); err != nil {
		return nil, err
	}

	// Postgres: a fresh database on the configured server.
	admin, err := pgx.Connect(ctx, cfg.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("postgres at %s is unreachable: %w; %s", redact(cfg.PostgresURL), err, Hint)
	}
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
	admin.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("create the sandbox's database: %w", err)
	}
	u, _ := url.Parse(cfg.PostgresURL)
	u.Path = "/" + name
	s.PGURL = u.String()
	s.cfg.PostgresURL = s.PGURL
	s.onClose(func() error { return dropDatabase(cfg.PostgresURL, name) })

	if s.PG, err = db.OpenPool(ctx, s.PGURL, cfg.PGMaxConns); err != nil {
		return nil, fmt.Errorf("connect the sandbox's database: %w", err)
	}
	s.onClose(func() error { s.PG.Close(); return nil })
	if _, err := db.Migrate(ctx, s.PG, s.Log); err != nil {
		return nil, fmt.Errorf("migrate the sandbox's database: %w", err)
	}

	// Mongo: a fresh database.
	if s.Mongo, err = readstore.Connect(ctx, cfg.MongoURL, cfg.MongoWriteConcern); err != nil {
		return nil, err
	}
	s.Reads = readstore.New(s.Mongo.Database(name))
	s.onClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Mongo.Database(name).Drop(ctx)
		_ = s.Mongo.Disconnect(ctx)
		return nil
	})
	if err := s.Reads.Ping(ctx); err != nil {
		return nil, fmt.Errorf("mongo at %s is unreachable: %w; %s", cfg.MongoURL, err, Hint)
	}

	// Redis: a private key prefix.
	if s.Redis, err = cache.Open(cfg.RedisURL); err != nil {
		return nil, err
	}
	s.onClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		keys, _ := ScanKeys(ctx, s.Redis, s.RedisPrefix+"*")
		for _, k := range keys {
			s.Redis.Del(ctx, k)
		}
		_ = s.Redis.Close()
		return nil
	})
	if err := s.Redis.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis at %s is unreachable: %w; %s", cfg.RedisURL, err, Hint)
	}
	return s, nil
}

// onClose has Close call f, before whatever was registered earlier.
func (s *Sandbox) onClose(f func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closers = append(s.closers, f)
}

// Close drops the sandbox's keys, Mongo database and Postgres database (and
// any slot on it), and closes its clients. What runs against the sandbox
// should be stopped first. Close may be called again; it does nothing then.
func (s *Sandbox) Close() error {
	var errs []error
	for {
		s.mu.Lock()
		n := len(s.closers)
		if n == 0 {
			s.mu.Unlock()
			return errors.Join(errs...)
		}
		f := s.closers[n-1]
		s.closers = s.closers[:n-1]
		s.mu.Unlock()
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
}

// Config is the configuration of a swapmeet process run against the sandbox.
func (s *Sandbox) Config() system.Config { return s.cfg }

// Clients are the sandbox's clients, as the system assembly takes them.
func (s *Sandbox) Clients() *system.Clients {
	return &system.Clients{PG: s.PG, Reads: s.Reads, Redis: s.Redis, Pages: s.Redis}
}

// Cache is the cache the system in the sandbox uses.
func (s *Sandbox) Cache() *cache.Cache { return cache.New(s.Redis, s.RedisPrefix) }

// Environ returns SWAPMEET_* variables that point a swapmeet process at the sandbox.
func (s *Sandbox) Environ() []string {
	return []string{
		"SWAPMEET_PG_URL=" + s.PGURL,
		"SWAPMEET_MONGO_URL=" + s.MongoURL,
		"SWAPMEET_MONGO_DB=" + s.MongoDB,
		"SWAPMEET_REDIS_URL=" + s.RedisURL,
		"SWAPMEET_REDIS_PREFIX=" + s.RedisPrefix,
		"SWAPMEET_SLOT=" + s.Slot,
		"SWAPMEET_PUBLICATION=" + s.Publication,
	}
}

// dropDatabase removes the sandbox's database and any slot still on it.
func dropDatabase(serverURL, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	defer conn.Close(ctx)
	var errs []error
	// A slot still streaming must be let go of before it can be dropped.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, name)
		if err == nil {
			_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, name)
		}
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				errs = append(errs, fmt.Errorf("drop slots of %s: %w", name, err))
			}
			break
		}
		wait.Sleep(ctx, 50*time.Millisecond) // the terminated walsender releases its slot asynchronously
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
		errs = append(errs, fmt.Errorf("drop %s: %w", name, err))
	}
	return errors.Join(errs...)
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
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
