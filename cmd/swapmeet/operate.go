package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// collectionsFlag parses --collection, which names one collection or all.
func collectionsFlag(fs *flag.FlagSet) func() ([]string, error) {
	c := fs.String("collection", "all", "users, listings, orders, reviews or all")
	return func() ([]string, error) {
		if *c == "all" {
			return readstore.Collections, nil
		}
		if !slices.Contains(readstore.Collections, *c) {
			return nil, fmt.Errorf("--collection %q: want one of %s or all", *c, strings.Join(readstore.Collections, ", "))
		}
		return []string{*c}, nil
	}
}

func verifyProjections(ctx context.Context, cfg config.Config, _ *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("projections verify", flag.ContinueOnError)
	collections := collectionsFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	names, err := collections()
	if err != nil {
		return err
	}
	d, err := openDeps(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	drifts, err := cdc.Verify(ctx, d.pg, d.reads, names)
	if err != nil {
		return err
	}
	if !cdc.PrintDrift(os.Stdout, drifts) {
		return exitError(1)
	}
	return nil
}

func slotStatus(ctx context.Context, cfg config.Config, _ *slog.Logger, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("slot status takes no arguments; the slot is SWAPMEET_SLOT (%s)", cfg.Slot)
	}
	pool, err := pgxpool.New(ctx, cfg.PostgresURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	s, err := cdc.ReadSlotStatus(ctx, pool, cfg.Slot)
	if err != nil {
		return err
	}
	s.Print(os.Stdout)
	return nil
}
