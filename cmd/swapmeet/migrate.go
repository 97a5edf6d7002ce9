package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/config"
)

func migrate(ctx context.Context, cfg config.Config, log *slog.Logger, _ []string) error {
	pool, err := pgxpool.New(ctx, cfg.PostgresURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := db.Migrate(ctx, pool, log)
	if err != nil {
		return err
	}
	log.Info("schema is up to date", "applied", n)
	return nil
}
