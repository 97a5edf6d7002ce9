// Package itest gives integration tests their own slice of the real
// services that `make up` starts: a sandbox (a fresh Postgres database, a
// fresh Mongo database, and a private Redis key prefix), removed when the
// test ends. A service that cannot be reached fails the test; it never
// skips.
package itest

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/swapmeet/swapmeet/internal/sandbox"
)

const hint = sandbox.Hint

// T is what the harness needs of a test; testing.TB has it.
type T interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Env is one test's private share of the services: a sandbox that the
// test's end drops.
type Env struct {
	*sandbox.Sandbox
}

func randomName(prefix string) string { return sandbox.RandomName(prefix) }

// New creates the test's database (migrated), Mongo database and Redis prefix.
func New(t T) *Env {
	t.Helper()
	var log *slog.Logger
	if os.Getenv("SWAPMEET_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := sandbox.New(context.Background(), log)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("%v", err)
		}
	})
	return &Env{s}
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t T, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	if err := sandbox.Poll(context.Background(), within, what, cond); err != nil {
		t.Fatalf("%v", err)
	}
}

// Superuser opens a session on e's database as the cluster's superuser
// (SWAPMEET_PG_ADMIN_URL, which `scripts/services.sh env` exports), for
// what the application's role may not do or see: another role's writes,
// server settings, the walsender's progress. It closes as the test ends.
func (e *Env) Superuser(t T) *pgx.Conn {
	t.Helper()
	admin := os.Getenv("SWAPMEET_PG_ADMIN_URL")
	if admin == "" {
		t.Fatalf("SWAPMEET_PG_ADMIN_URL is not set: run under make test, or eval \"$(scripts/services.sh env)\"")
	}
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatalf("SWAPMEET_PG_ADMIN_URL: %v", err)
	}
	ctx := context.Background()
	if err := e.PG.QueryRow(ctx, `SELECT current_database()`).Scan(&cfg.Database); err != nil {
		t.Fatalf("%v", err)
	}
	su, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect as the superuser: %v", err)
	}
	t.Cleanup(func() { _ = su.Close(context.Background()) })
	return su
}
