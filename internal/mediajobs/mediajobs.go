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

// thumbnailTimeout bounds the store I/O of one thumbnail, which runs
// while its row is locked.
const thumbnailTimeout = 30 * time.Second

// Jobs run the media background work on a database and a bucket.
type Jobs struct {
	store *db.Store
	media *media.Bucket
	log   *slog.Logger
}

// New returns the jobs over store and bucket; a nil log is slog's default.
func New(store *db.Store, bucket *media.Bucket, log *slog.Logger) *Jobs {
	if log == nil {
		log = slog.Default()
	}
	return &Jobs{store: store, media: bucket, log: log}
}
