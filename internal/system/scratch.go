package system

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
	"github.com/swapmeet/swapmeet/internal/search"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// ScratchHint says how to get the services a Scratch needs.
const ScratchHint = "start the local services with `make up` (or point SWAPMEET_* at running ones)"

// Scratch is a private, disposable share of the services cfg names, for
// tests and benchmarks: a fresh Postgres database (migrated), a fresh
// search database (migrated), a fresh Mongo database, a private Redis key
// prefix and a slot name nobody else uses, plus the shared bucket. Close
// drops all of it.
type Scratch struct {
	Config Config // cfg pointed at the scratch stores
	PG     *pgxpool.Pool
	Mongo  *mongo.Client
	Reads  *readstore.Model
	Search *search.Store
	Redis  redis.UniversalClient
	Media  *media.Bucket // the shared bucket; keys are unique per scratch

	mu      sync.Mutex
	closers []func() error // newest last
}

// RandomName is prefix and 12 random hex digits.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NewScratch creates a scratch share named prefix and random digits; log
// receives the migrations' lines (nil: discarded). On an error, what was
// created is dropped again.
func NewScratch(ctx context.Context, cfg Config, prefix string, log *slog.Logger) (_ *Scratch, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	name := RandomName(prefix)
	s := &Scratch{Config: cfg}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	s.Config.MongoDB, s.Config.RedisPrefix, s.Config.Slot = name, name+":", name
	if s.Media, err = media.New(cfg.Media); err != nil {
		return nil, err
	}

	// Created and migrated by the schema's owner, used by the application's
	// role, as `swapmeet migrate` and the processes do.
	owner := cfg.MigrationURL()
	if err := AdminExec(ctx, owner, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database %s on %s: %w; %s", name, redact(owner), err, ScratchHint)
	}
	s.Config.PostgresURL = DatabaseURL(cfg.PostgresURL, name)
	if cfg.MigrateURL != "" {
		s.Config.MigrateURL = DatabaseURL(cfg.MigrateURL, name)
	}
	s.OnClose(func() error { return dropDatabase(cfg.PostgresURL, owner, name) })
	if err := migrateDatabase(ctx, s.Config.MigrationURL(), log); err != nil {
		return nil, fmt.Errorf("migrate the scratch database: %w", err)
	}
	if s.PG, err = db.OpenPool(ctx, s.Config.PostgresURL, cfg.PGMaxConns); err != nil {
		return nil, fmt.Errorf("connect the scratch database: %w", err)
	}
	s.OnClose(func() error { s.PG.Close(); return nil })

	if err := AdminExec(ctx, cfg.SearchURL, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database %s on %s: %w; %s", name, redact(cfg.SearchURL), err, ScratchHint)
	}
	s.Config.SearchURL = DatabaseURL(cfg.SearchURL, name)
	s.OnClose(func() error { return dropDatabase(cfg.SearchURL, cfg.SearchURL, name) })
	if s.Search, err = search.Open(ctx, s.Config.SearchURL, cfg.Search); err != nil {
		return nil, err
	}
	s.OnClose(func() error { s.Search.Close(); return nil })
	if err := s.Search.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate the scratch search database: %w", err)
	}

	if s.Mongo, err = readstore.Connect(ctx, cfg.MongoURL, cfg.MongoWriteConcern); err != nil {
		return nil, err
	}
	s.Reads = readstore.New(s.Mongo.Database(name))
	s.OnClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Mongo.Database(name).Drop(ctx)
		_ = s.Mongo.Disconnect(ctx)
		return nil
	})
	if err := s.Reads.Ping(ctx); err != nil {
		return nil, fmt.Errorf("mongo at %s is unreachable: %w; %s", cfg.MongoURL, err, ScratchHint)
	}

	if s.Redis, err = cache.Open(cfg.RedisURL); err != nil {
		return nil, err
	}
	s.OnClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		keys, _ := ScanKeys(ctx, s.Redis, s.Config.RedisPrefix+"*")
		for _, k := range keys {
			s.Redis.Del(ctx, k)
		}
		_ = s.Redis.Close()
		return nil
	})
	if err := s.Redis.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis at %s is unreachable: %w; %s", cfg.RedisURL, err, ScratchHint)
	}
	return s, nil
}

// OnClose has Close call f, before whatever was registered earlier.
func (s *Scratch) OnClose(f func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closers = append(s.closers, f)
}

// Close runs what OnClose registered, newest first, then drops the keys,
// the Mongo database and the Postgres database (with any slot on it).
// What runs against the scratch share should be stopped first. A second
// Close does nothing.
func (s *Scratch) Close() error {
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

// Clients are the scratch share's clients, as the assembly takes them.
func (s *Scratch) Clients() *Clients {
	return &Clients{PG: s.PG, Reads: s.Reads, Search: s.Search, Redis: s.Redis, Pages: s.Redis}
}

// Environ returns SWAPMEET_* variables that point a swapmeet process at
// the scratch share.
func (s *Scratch) Environ() []string {
	c := s.Config
	return []string{
		"SWAPMEET_PG_URL=" + c.PostgresURL, "SWAPMEET_PG_MIGRATE_URL=" + c.MigrateURL, "SWAPMEET_SEARCH_URL=" + c.SearchURL, "SWAPMEET_MONGO_URL=" + c.MongoURL, "SWAPMEET_MONGO_DB=" + c.MongoDB,
		"SWAPMEET_REDIS_URL=" + c.RedisURL, "SWAPMEET_REDIS_PREFIX=" + c.RedisPrefix,
		"SWAPMEET_SLOT=" + c.Slot, "SWAPMEET_PUBLICATION=" + c.Publication,
	}
}

// DatabaseURL is serverURL with its database replaced by name.
func DatabaseURL(serverURL, name string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return serverURL
	}
	u.Path = "/" + name
	return u.String()
}

// AdminExec runs one statement on its own connection to serverURL (for
// CREATE and DROP DATABASE, which no transaction may hold).
func AdminExec(ctx context.Context, serverURL, sql string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// migrateDatabase applies the migrations on their own connection to url.
func migrateDatabase(ctx context.Context, url string, log *slog.Logger) error {
	pool, err := db.OpenPool(ctx, url, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = db.Migrate(ctx, pool, log)
	return err
}

// dropDatabase removes a scratch database, as ownerURL's role, and any
// slot still on it, as serverURL's (which may stop the walsenders it
// started).
func dropDatabase(serverURL, ownerURL, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	defer conn.Close(ctx)
	owner := conn
	if ownerURL != serverURL {
		if owner, err = pgx.Connect(ctx, ownerURL); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		defer owner.Close(ctx)
	}
	var errs []error
	// A slot still streaming must be let go of before it can be dropped;
	// the terminated walsender releases it asynchronously.
	for deadline := time.Now().Add(15 * time.Second); ; wait.Sleep(ctx, 50*time.Millisecond) {
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
	}
	// A plain DROP first: it stops the autovacuum workers a large load
	// may have started in the database, which FORCE would need the right
	// to signal (pg_signal_backend); FORCE ends the sessions left.
	if _, err := owner.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		if _, err := owner.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			errs = append(errs, fmt.Errorf("drop %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// ScanKeys returns every key that matches pattern. On a Redis Cluster a
// SCAN sees one node only, so it scans every master.
func ScanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	scan := func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		var keys []string
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return keys, iter.Err()
	}
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return scan(ctx, rdb)
	}
	var (
		mu   sync.Mutex
		keys []string
	)
	err := cluster.ForEachMaster(ctx, func(ctx context.Context, master *redis.Client) error {
		k, err := scan(ctx, master)
		mu.Lock()
		keys = append(keys, k...)
		mu.Unlock()
		return err
	})
	return keys, err
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}
