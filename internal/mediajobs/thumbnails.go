package mediajobs

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// MakeThumbnail makes the thumbnail of one confirmed image that has none,
// and reports whether it found one to make. The row stays locked while the
// thumbnail is made, so workers in several processes never collide, and a
// worker that dies leaves the row to the next. A thumbnail that cannot be
// made (the image does not decode, after all) falls back to the original,
// so that it is not retried forever.
func (j *Jobs) MakeThumbnail(ctx context.Context) (bool, error) {
	found := false
	_, err := j.store.ExecTx(ctx, db.TxOptions{}, func(q *sqlc.Queries) error {
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
		if err != nil {
			return err
		}
		_, err = q.SetThumbnail(ctx, sqlc.SetThumbnailParams{ID: job.ID, ThumbnailKey: &key})
		return err
	})
	return found, err
}

// thumbnail stores the thumbnail of one image and returns its key.
func (j *Jobs) thumbnail(ctx context.Context, job sqlc.ClaimThumbnailJobRow) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, thumbnailTimeout)
	defer cancel()
	r, err := j.media.Open(ctx, job.ObjectKey)
	if err != nil {
		return "", err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, job.SizeBytes+1))
	if errors.Is(err, media.ErrNotFound) {
		j.log.Error("confirmed image has no object", "media_id", job.ID, "key", job.ObjectKey)
		return job.ObjectKey, nil
	}
	if err != nil {
		return "", err
	}
	thumb, err := media.Thumbnail(data, job.ContentType)
	if errors.Is(err, media.ErrInvalidImage) {
		j.log.Warn("no thumbnail: the original is shown instead", "media_id", job.ID, "err", err)
		return job.ObjectKey, nil
	}
	if err != nil {
		return "", err
	}
	key := media.ThumbnailKey(job.ObjectKey)
	if err := j.media.Put(ctx, key, "image/jpeg", thumb); err != nil {
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
