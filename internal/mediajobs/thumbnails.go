package mediajobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// Thumbnail attempts: an image whose thumbnail fails within the budget
// (media.ErrBudgetExceeded) is tried again after a pause, at most
// maxThumbnailAttempts times in all, then marked failed; an image that is
// not valid is marked failed at once. Either way the original stands in.
const (
	maxThumbnailAttempts = 3
	thumbnailRetryAfter  = time.Minute // doubled after each attempt
)

// MakeThumbnail makes the thumbnail of one confirmed image that has none,
// and reports whether it found one to make. The row stays locked while the
// thumbnail is made, so workers in several processes never collide, and a
// worker that dies leaves the row to the next. The decode runs in the
// sandbox's child process, which ctx ending kills at once. A thumbnail
// that cannot be made is recorded with its reason and falls back to the
// original; one that failed is retried later, and until then the queue
// serves the images tried fewer times.
func (j *Jobs) MakeThumbnail(ctx context.Context) (bool, error) {
	ctx = audit.Job(ctx, "thumbnails")
	found := false
	_, err := j.store.ExecTx(ctx, db.TxOptions{Actor: audit.System}, func(q *sqlc.Queries) error {
		job, err := q.ClaimThumbnailJob(ctx)
		if errors.Is(err, db.ErrNotFound) {
			found = false
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		key, err := j.thumbnail(ctx, job)
		if ctx.Err() != nil {
			return ctx.Err() // cut short: the next run redoes it
		}
		attempt := job.ThumbnailAttempts + 1
		switch {
		case errors.Is(err, media.ErrInvalidImage),
			errors.Is(err, media.ErrBudgetExceeded) && attempt >= maxThumbnailAttempts:
			j.log.Warn("no thumbnail: the original is shown instead", "media_id", job.ID, "attempt", attempt, "err", err)
			reason := err.Error()
			_, err = q.SetThumbnail(ctx, sqlc.SetThumbnailParams{ID: job.ID, ThumbnailKey: &job.ObjectKey, ThumbnailError: &reason})
			return err
		case errors.Is(err, media.ErrBudgetExceeded):
			retry := thumbnailRetryAfter << (attempt - 1)
			j.log.Warn("thumbnail failed; retrying later", "media_id", job.ID, "attempt", attempt, "in", retry, "err", err)
			reason := err.Error()
			_, err = q.DeferThumbnail(ctx, sqlc.DeferThumbnailParams{ID: job.ID, ThumbnailError: &reason, RetryAfterSecs: retry.Seconds()})
			return err
		case err != nil:
			return err
		}
		_, err = q.SetThumbnail(ctx, sqlc.SetThumbnailParams{ID: job.ID, ThumbnailKey: &key})
		return err
	})
	return found, err
}

// thumbnail stores the thumbnail of one image and returns its key.
func (j *Jobs) thumbnail(ctx context.Context, job sqlc.ClaimThumbnailJobRow) (string, error) {
	ioCtx, cancel := context.WithTimeout(ctx, thumbnailTimeout)
	defer cancel()
	r, err := j.media.Open(ioCtx, job.ObjectKey)
	if err != nil {
		return "", err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, job.SizeBytes+1))
	if errors.Is(err, media.ErrNotFound) {
		j.log.Error("confirmed image has no object", "media_id", job.ID, "key", job.ObjectKey)
		return "", fmt.Errorf("%w: the object is missing", media.ErrInvalidImage)
	}
	if err != nil {
		return "", err
	}
	thumb, err := j.sandbox.Thumbnail(ctx, data, job.ContentType)
	if err != nil {
		return "", err
	}
	key := media.ThumbnailKey(job.ObjectKey)
	ioCtx, cancel = context.WithTimeout(ctx, thumbnailTimeout)
	defer cancel()
	if err := j.media.Put(ioCtx, key, "image/jpeg", thumb); err != nil {
		return "", err
	}
	return key, nil
}

// RunThumbnails makes thumbnails until ctx ends: at once while there are
// some to make, every idle otherwise, backing off while Postgres or the
// store fails. Work cut short by ctx is left for the next run.
func (j *Jobs) RunThumbnails(ctx context.Context, idle time.Duration) {
	backoff := wait.NewBackoff(100*time.Millisecond, 30*time.Second)
	for {
		did, err := j.MakeThumbnail(ctx)
		if ctx.Err() != nil {
			return
		}
		pause := time.Duration(0)
		switch {
		case err != nil:
			pause = backoff.Next()
			j.log.Warn("thumbnail failed; retrying", "in", pause, "err", err)
		case !did:
			backoff.Reset()
			pause = idle
		default:
			backoff.Reset()
		}
		if !wait.Sleep(ctx, pause) {
			return
		}
	}
}
