package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/mediajobs"
	"github.com/swapmeet/swapmeet/internal/system"
)

func mediaSweep(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("media sweep", flag.ContinueOnError)
	olderThan := fs.Duration("older-than", system.SweepPendingOlderThan, "remove uploads that were never confirmed for this long")
	grace := fs.Duration("orphan-grace", system.SweepOrphanGrace, "never remove objects younger than this as orphans")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if fs.NArg() > 0 || *olderThan <= 0 || *grace < 0 {
		fmt.Fprintln(os.Stderr, "usage: swapmeet media sweep [--older-than 24h] [--orphan-grace 1h]")
		return exitError(2)
	}
	pool, err := db.OpenPool(ctx, cfg.PostgresURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	bucket, err := media.New(cfg.MediaConfig())
	if err != nil {
		return err
	}
	jobs := mediajobs.New(db.NewStore(pool), bucket, log)
	rep, err := jobs.SweepMedia(ctx, mediajobs.SweepOptions{PendingOlderThan: *olderThan, OrphanGrace: *grace})
	fmt.Printf("pending uploads older than %s removed:  %d\n", *olderThan, rep.StalePending)
	fmt.Printf("images of withdrawn listings removed: %d\n", rep.Withdrawn)
	fmt.Printf("orphaned objects removed:             %d\n", rep.Orphans)
	fmt.Printf("objects deleted:                      %d\n", rep.ObjectsRemoved)
	fmt.Printf("objects that could not be deleted:    %d\n", rep.ObjectErrors)
	if err != nil {
		return err
	}
	if rep.ObjectErrors > 0 {
		return exitError(1) // the next sweep retries them as orphans
	}
	return nil
}
