// Package itest gives integration tests their own slice of the real
// services that `make up` starts: a fresh Postgres database, a fresh Mongo
// database, and a private Redis key prefix, each removed when the test ends.
// A service that cannot be reached fails the test; it never skips.
package itest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/system"
)

const hint = "start the local services with `make up` (or point SWAPMEET_* at running ones)"

// T is what the harness needs of a test; testing.TB has it, and so can a
// benchmark command that is not a test.
type T interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Env is one test's private share of the services.
type Env struct {
	PGURL       string // the test's own database
	PG          *pgxpool.Pool
	MongoURL    string
	MongoDB     string
	Mongo       *mongo.Client
	Reads       *readstore.Model
	RedisURL    string
	Redis       redis.UniversalClient // a server or a Redis Cluster, as SWAPMEET_REDIS_URL says
	RedisPrefix string
	Media       *media.Bucket // the shared bucket; keys are unique per test
	Slot        string        // a slot name nobody else uses
	Publication string
	Log         *slog.Logger

	cfg config.Config // what a swapmeet process run against this Env reads
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// New creates the test's database (migrated), Mongo database and Redis prefix.
func New(t T) *Env {
	t.Helper()
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatalf("configuration: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := randomName("swapmeet_test_")
	e := &Env{
		MongoURL:    cfg.MongoURL,
		MongoDB:     name,
		RedisURL:    cfg.RedisURL,
		RedisPrefix: name + ":",
		Slot:        name,
		Publication: cfg.Publication,
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if os.Getenv("SWAPMEET_TEST_LOG") != "" {
		e.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	e.cfg = cfg
	e.cfg.MongoDB, e.cfg.RedisPrefix, e.cfg.Slot = e.MongoDB, e.RedisPrefix, e.Slot

	e.Media, err = media.New(cfg.MediaConfig())
	if err != nil {
		t.Fatalf("%v", err)
	}

	// Postgres: a fresh database on the configured server.
	admin, err := pgx.Connect(ctx, cfg.PostgresURL)
	if err != nil {
		t.Fatalf("postgres at %s is unreachable: %v; %s", redact(cfg.PostgresURL), err, hint)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	admin.Close(ctx)
	u, _ := url.Parse(cfg.PostgresURL)
	u.Path = "/" + name
	e.PGURL = u.String()
	e.cfg.PostgresURL = e.PGURL
	t.Cleanup(func() { dropDatabase(t, cfg.PostgresURL, name) })

	e.PG, err = config.OpenPool(ctx, e.PGURL, cfg.PGMaxConns)
	if err != nil {
		t.Fatalf("connect test database: %v", err)
	}
	t.Cleanup(e.PG.Close)
	if _, err := db.Migrate(ctx, e.PG, e.Log); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}

	// Mongo: a fresh database.
	e.Mongo, err = readstore.Connect(ctx, cfg.MongoURL, cfg.MongoWriteConcern)
	if err != nil {
		t.Fatalf("%v", err)
	}
	e.Reads = readstore.New(e.Mongo.Database(name))
	if err := e.Reads.Ping(ctx); err != nil {
		t.Fatalf("mongo at %s is unreachable: %v; %s", cfg.MongoURL, err, hint)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Mongo.Database(name).Drop(ctx)
		_ = e.Mongo.Disconnect(ctx)
	})

	// Redis: a private key prefix.
	e.Redis, err = cache.Open(cfg.RedisURL)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := e.Redis.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s is unreachable: %v; %s", cfg.RedisURL, err, hint)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		keys, _ := ScanKeys(ctx, e.Redis, e.RedisPrefix+"*")
		for _, k := range keys {
			e.Redis.Del(ctx, k)
		}
		_ = e.Redis.Close()
	})
	return e
}

// Config is the configuration of a swapmeet process run against this Env.
func (e *Env) Config() config.Config { return e.cfg }

// Clients are this Env's clients, as the system assembly takes them.
func (e *Env) Clients() *system.Clients {
	return &system.Clients{PG: e.PG, Reads: e.Reads, Redis: e.Redis, Pages: e.Redis}
}

// Environ returns SWAPMEET_* variables that point a swapmeet process at this Env.
func (e *Env) Environ() []string {
	return []string{
		"SWAPMEET_PG_URL=" + e.PGURL,
		"SWAPMEET_MONGO_URL=" + e.MongoURL,
		"SWAPMEET_MONGO_DB=" + e.MongoDB,
		"SWAPMEET_REDIS_URL=" + e.RedisURL,
		"SWAPMEET_REDIS_PREFIX=" + e.RedisPrefix,
		"SWAPMEET_SLOT=" + e.Slot,
		"SWAPMEET_PUBLICATION=" + e.Publication,
	}
}

// dropDatabase removes the test database and any slot still on it.
func dropDatabase(t T, serverURL, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		t.Logf("drop %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	// A slot still streaming must be let go of before it can be dropped.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, name)
		if err == nil {
			_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, name)
		}
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				t.Logf("drop slots of %s: %v", name, err)
			}
			break
		}
		time.Sleep(50 * time.Millisecond) // the terminated walsender releases its slot asynchronously
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
		t.Logf("drop %s: %v", name, err)
	}
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t T, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", within, what, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
