package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/media"
)

// Defaults of the media sweeper, in `serve` and in `media sweep`.
const (
	sweepPendingOlderThan = 24 * time.Hour
	sweepOrphanGrace      = time.Hour
	thumbnailIdlePoll     = time.Second
)

// startMedia runs the media background work of an API process until stop
// is called: it prepares the bucket (retrying while the store is down, so
// the API serves everything else meanwhile), makes thumbnails, and sweeps.
// Every replica may run it: the thumbnail queue is claimed with SKIP
// LOCKED, and sweeps are idempotent.
func startMedia(ctx context.Context, cfg config.Config, log *slog.Logger, a *app.App, store *media.Store) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { bootstrapBucket(ctx, cfg, log, store) })
	wg.Go(func() { a.Commands.RunThumbnails(ctx, thumbnailIdlePoll) })
	wg.Go(func() {
		a.Commands.RunSweeps(ctx, cfg.MediaSweepInterval, app.SweepOptions{PendingOlderThan: sweepPendingOlderThan, OrphanGrace: sweepOrphanGrace})
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

func bootstrapBucket(ctx context.Context, cfg config.Config, log *slog.Logger, store *media.Store) {
	backoff := time.Second
	for {
		b, err := store.Bootstrap(ctx, cfg.WebOrigins)
		if err == nil {
			log.Info("media bucket ready", "bucket", cfg.S3Bucket, "created", b.Created, "policy_removed", b.PolicyRemoved, "bucket_cors", b.BucketCORS)
			if !b.BucketCORS {
				log.Info("the object store has no per-bucket CORS; browsers rely on its server-wide setting (MinIO: MINIO_API_CORS_ALLOW_ORIGIN)",
					"origins", cfg.WebOrigins)
			}
			return
		}
		log.Warn("media bucket not ready; retrying", "bucket", cfg.S3Bucket, "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func mediaSweep(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("media sweep", flag.ContinueOnError)
	olderThan := fs.Duration("older-than", sweepPendingOlderThan, "remove uploads that were never confirmed for this long")
	grace := fs.Duration("orphan-grace", sweepOrphanGrace, "never remove objects younger than this as orphans")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if fs.NArg() > 0 || *olderThan <= 0 || *grace < 0 {
		fmt.Fprintln(os.Stderr, "usage: swapmeet media sweep [--older-than 24h] [--orphan-grace 1h]")
		return exitError(2)
	}
	pool, err := config.OpenPool(ctx, cfg.PostgresURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := media.New(cfg.MediaConfig())
	if err != nil {
		return err
	}
	a, err := app.New(app.Deps{Store: db.NewStore(pool), Media: store, Log: log})
	if err != nil {
		return err
	}
	rep, err := a.Commands.SweepMedia(ctx, app.SweepOptions{PendingOlderThan: *olderThan, OrphanGrace: *grace})
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
