// Package mediajobs holds the media background jobs: the thumbnail worker
// and the sweeper. They run beside the API (and the sweeper also as
// `swapmeet media sweep`), share nothing with a request, and work on
// Postgres and the object store alone.
package mediajobs

import (
	"log/slog"
	"time"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/media"
)

// thumbnailTimeout bounds each store operation of one thumbnail, which
// runs while its row is locked; the decode is bounded by the sandbox.
const thumbnailTimeout = 30 * time.Second

// Jobs run the media background work on a database and a bucket.
type Jobs struct {
	store   *db.Store
	media   *media.Bucket
	sandbox media.Sandbox
	log     *slog.Logger
}

// New returns the jobs over store and bucket, making thumbnails under
// media.DefaultSandbox; a nil log is slog's default.
func New(store *db.Store, bucket *media.Bucket, log *slog.Logger) *Jobs {
	if log == nil {
		log = slog.Default()
	}
	return &Jobs{store: store, media: bucket, sandbox: media.DefaultSandbox, log: log}
}

// WithSandbox returns the jobs making thumbnails under s instead.
func (j *Jobs) WithSandbox(s media.Sandbox) *Jobs {
	c := *j
	c.sandbox = s
	return &c
}
