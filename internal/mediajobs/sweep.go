package mediajobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// SweepOptions say what the media sweeper removes.
type SweepOptions struct {
	// PendingOlderThan: uploads never confirmed for this long are removed.
	PendingOlderThan time.Duration
	// OrphanGrace: objects younger than this are never called orphans.
	// Orphans cannot arise from a write in flight (a row always precedes
	// its objects), so this is a safety margin, not a correctness need.
	OrphanGrace time.Duration
}

// SweepReport counts what a sweep removed.
type SweepReport struct {
	StalePending   int // rows of uploads never confirmed
	Withdrawn      int // rows of images of withdrawn listings
	Orphans        int // objects that no row owned
	ObjectsRemoved int // objects removed, orphans included
	ObjectErrors   int // objects that could not be removed (a next sweep retries them as orphans)
}

const sweepBatch = 500

// SweepMedia removes what no longer serves anyone: pending uploads older
// than opts.PendingOlderThan, every image of withdrawn listings, and
// objects that no row owns. Rows go first, each batch in its own
// transaction, then their objects; an object whose removal fails has no
// row left and is found again as an orphan. Running it again, or in
// several processes at once, is harmless.
func (j *Jobs) SweepMedia(ctx context.Context, opts SweepOptions) (SweepReport, error) {
	ctx = audit.Job(ctx, "media-sweep")
	var rep SweepReport
	remove := func(keys []string) {
		for _, k := range keys {
			if err := j.media.Remove(ctx, k); err != nil {
				rep.ObjectErrors++
				j.log.Warn("sweep: object not removed", "key", k, "err", err)
				continue
			}
			rep.ObjectsRemoved++
		}
	}
	// Rows, a batch per transaction: stale uploads, then withdrawn
	// listings' images. Each pass deletes rows and returns their objects.
	for _, pass := range []struct {
		count  *int
		delete func(q *sqlc.Queries) (rows int, keys []string, err error)
	}{
		{&rep.StalePending, func(q *sqlc.Queries) (int, []string, error) {
			rows, err := q.DeleteStalePendingMedia(ctx, sqlc.DeleteStalePendingMediaParams{OlderThanSecs: opts.PendingOlderThan.Seconds(), Batch: sweepBatch})
			var keys []string
			for _, r := range rows {
				// The upload is staged; a confirmation that failed after
				// copying it may have left the final key too.
				keys = append(keys, media.StagingKey(r.ObjectKey), r.ObjectKey)
			}
			return len(rows), keys, err
		}},
		{&rep.Withdrawn, func(q *sqlc.Queries) (int, []string, error) {
			rows, err := q.DeleteWithdrawnListingMedia(ctx, sweepBatch)
			var keys []string
			for _, r := range rows {
				keys = append(keys, media.ImageKeys(r.ObjectKey, r.ThumbnailKey)...)
			}
			return len(rows), keys, err
		}},
	} {
		for {
			var n int
			var keys []string
			_, err := j.store.ExecTx(ctx, db.TxOptions{Actor: audit.System}, func(q *sqlc.Queries) error {
				var err error
				n, keys, err = pass.delete(q)
				return err
			})
			if err != nil {
				return rep, fmt.Errorf("sweep media rows: %w", err)
			}
			*pass.count += n
			remove(keys)
			if n < sweepBatch {
				break
			}
		}
	}

	// Objects that no row owns.
	cutoff := time.Now().Add(-opts.OrphanGrace)
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		owners := make([]string, len(batch))
		for i, k := range batch {
			owners[i] = media.FinalKey(strings.TrimSuffix(k, media.ThumbnailKey("")))
		}
		existing, err := j.store.ExistingObjectKeys(ctx, owners)
		if err != nil {
			return fmt.Errorf("sweep media orphans: %w", err)
		}
		owned := make(map[string]bool, len(existing))
		for _, k := range existing {
			owned[k] = true
		}
		var orphans []string
		for i, k := range batch {
			if !owned[owners[i]] {
				orphans = append(orphans, k)
			}
		}
		rep.Orphans += len(orphans)
		remove(orphans)
		batch = batch[:0]
		return nil
	}
	// Staged uploads are owned by the row of their final key; those of
	// confirmed rows are left to the lifecycle rule (they keep the tag).
	for _, prefix := range []string{media.ListingsPrefix, media.UploadsPrefix} {
		for o, err := range j.media.List(ctx, prefix) {
			if err != nil {
				return rep, fmt.Errorf("sweep media orphans: %w", err)
			}
			if o.LastModified.After(cutoff) {
				continue
			}
			if batch = append(batch, o.Key); len(batch) == sweepBatch {
				if err := flush(); err != nil {
					return rep, err
				}
			}
		}
	}
	return rep, flush()
}

// RunSweeps sweeps media every interval until ctx ends. The first sweep
// waits an interval too: restarts do not sweep, and the bucket is ready.
func (j *Jobs) RunSweeps(ctx context.Context, every time.Duration, opts SweepOptions) {
	wait.Every(ctx, every, func(ctx context.Context) {
		rep, err := j.SweepMedia(ctx, opts)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			j.log.Warn("media sweep failed; retrying next time", "err", err)
		case rep != SweepReport{}:
			j.log.Info("media swept", "stale_pending", rep.StalePending, "withdrawn", rep.Withdrawn,
				"orphans", rep.Orphans, "objects_removed", rep.ObjectsRemoved, "object_errors", rep.ObjectErrors)
		}
	})
}
