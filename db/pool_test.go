package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/system"
)

func TestStatementTimeoutReachesTheSession(t *testing.T) {
	cfg, err := system.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pool, err := db.OpenPool(ctx, db.WithStatementTimeout(cfg.PostgresURL, 1500*time.Millisecond), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var got string
	if err := pool.QueryRow(ctx, `SHOW statement_timeout`).Scan(&got); err != nil {
		t.Fatalf("postgres at SWAPMEET_PG_URL: %v", err)
	}
	if got != "1500ms" {
		t.Fatalf("statement_timeout = %q, want 1500ms", got)
	}
	if got := db.WithStatementTimeout("host=db user=x", time.Second); got != "host=db user=x statement_timeout=1000" {
		t.Fatalf("key=value form: %q", got)
	}
}
