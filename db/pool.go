package db

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/internal/roundtrip"
)

// OpenPool opens a pgx pool on url with at most maxConns connections.
// pgx's default (the number of CPUs, at least 4) starves a server whose
// requests mostly wait on the network, not the CPU.
func OpenPool(ctx context.Context, url string, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	cfg.MaxConns = int32(maxConns)
	roundtrip.Pool(cfg, roundtrip.Postgres)
	return pgxpool.NewWithConfig(ctx, cfg)
}

// WithStatementTimeout returns the Postgres URL (or key=value string) pg
// with a statement_timeout that every connection of a pool opened on it
// sets at startup.
func WithStatementTimeout(pg string, d time.Duration) string {
	ms := strconv.FormatInt(d.Milliseconds(), 10)
	u, err := url.Parse(pg)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return pg + " statement_timeout=" + ms
	}
	q := u.Query()
	q.Set("statement_timeout", ms)
	u.RawQuery = q.Encode()
	return u.String()
}
