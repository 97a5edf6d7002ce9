package main

import (
	"context"
	"log/slog"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/consistency"
)

func runCDC(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	d, err := openDeps(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	sink := cdc.NewProjector(d.pg, d.reads, cache.New(d.redis, cfg.RedisPrefix),
		d.redis, consistency.KeysFor(cfg.RedisPrefix), log)
	r := cdc.NewReader(cdc.Config{
		ConnString:  cfg.PostgresURL,
		Slot:        cfg.Slot,
		Publication: cfg.Publication,
		Log:         log,
	}, sink)
	return r.Run(ctx)
}
