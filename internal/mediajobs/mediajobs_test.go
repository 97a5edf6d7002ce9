package mediajobs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/media/mediatest"
	"github.com/swapmeet/swapmeet/internal/mediajobs"
)

var ctx = context.Background()

// mediaEnv is the commands, and the jobs, on a private database and bucket.
type mediaEnv struct {
	t      *testing.T
	e      *itest.Env
	c      *app.Commands
	j      *mediajobs.Jobs
	seller uuid.UUID
}

func newMediaEnv(t *testing.T) *mediaEnv {
	e := itest.New(t)
	e.Media = mediatest.Bucket(t)
	store := db.NewStore(e.PG)
	a, err := app.New(app.Deps{Store: store, Media: e.Media, Log: e.Log, Password: itest.FastPasswords})
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.Commands.SignUp(ctx, "seller@example.com", "correct horse", "Seller")
	if err != nil {
		t.Fatal(err)
	}
	return &mediaEnv{t: t, e: e, c: a.Commands, j: mediajobs.New(store, e.Media, e.Log), seller: u.UserID}
}

func (m *mediaEnv) listing(title string) string {
	m.t.Helper()
	w, err := m.c.CreateListing(ctx, m.seller, app.ListingInput{
		Title: title, Category: "lamps", Condition: "GOOD", Price: &app.Money{Currency: "EUR", Minor: 100},
	}, "")
	if err != nil {
		m.t.Fatal(err)
	}
	return w.ID.String()
}

// upload creates, uploads and, if confirm, confirms one image; it returns its key.
func (m *mediaEnv) upload(listingID string, confirm bool) (mediaID, key string) {
	m.t.Helper()
	img := mediatest.PNG(40, 30)
	up, err := m.c.CreateMediaUpload(ctx, m.seller, listingID, "image/png", int64(len(img)), "")
	if err != nil {
		m.t.Fatal(err)
	}
	mediatest.Upload(m.t, up.Upload, img)
	if confirm {
		if _, err := m.c.ConfirmMediaUpload(ctx, m.seller, listingID, up.ID.String()); err != nil {
			m.t.Fatal(err)
		}
	}
	return up.ID.String(), media.FinalKey(up.Fields["key"])
}

func (m *mediaEnv) exists(key string) bool {
	m.t.Helper()
	_, err := m.e.Media.Stat(ctx, key)
	if err != nil && !errors.Is(err, media.ErrNotFound) {
		m.t.Fatal(err)
	}
	return err == nil
}

func (m *mediaEnv) rows() int {
	m.t.Helper()
	var n int
	if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM listing_media`).Scan(&n); err != nil {
		m.t.Fatal(err)
	}
	return n
}

func (m *mediaEnv) makeThumbnails() {
	m.t.Helper()
	for {
		did, err := m.j.MakeThumbnail(ctx)
		if err != nil {
			m.t.Fatal(err)
		}
		if !did {
			return
		}
	}
}

// TestSweepMedia: a sweep removes stale uploads, withdrawn listings'
// images and orphaned objects, keeps everything else, and a second sweep
// finds nothing.
func TestSweepMedia(t *testing.T) {
	m := newMediaEnv(t)

	kept := m.listing("Kept")
	_, keptKey := m.upload(kept, true)
	_, freshPendingKey := m.upload(kept, false) // young: may still be confirmed

	_, staleKey := m.upload(m.listing("Stale"), false)
	if _, err := m.e.PG.Exec(ctx, `UPDATE listing_media SET created_at = now() - interval '25 hours' WHERE object_key = $1`, staleKey); err != nil {
		t.Fatal(err)
	}

	withdrawn := m.listing("Withdrawn")
	_, withdrawnKey := m.upload(withdrawn, true)
	m.makeThumbnails()
	if _, err := m.c.WithdrawListing(ctx, m.seller, withdrawn, 1); err != nil {
		t.Fatal(err)
	}

	orphan := media.ObjectKey(uuid.New(), uuid.New())
	for _, k := range []string{orphan, media.ThumbnailKey(orphan)} {
		if err := m.e.Media.Put(ctx, k, "image/png", mediatest.PNG(1, 1)); err != nil {
			t.Fatal(err)
		}
	}

	rep, err := m.j.SweepMedia(ctx, mediajobs.SweepOptions{PendingOlderThan: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	want := mediajobs.SweepReport{StalePending: 1, Withdrawn: 1, Orphans: 2, ObjectsRemoved: 2 + 2 + 2}
	if rep != want {
		t.Errorf("sweep = %+v, want %+v", rep, want)
	}
	for _, k := range []string{staleKey, media.StagingKey(staleKey), withdrawnKey, media.ThumbnailKey(withdrawnKey), orphan, media.ThumbnailKey(orphan)} {
		if m.exists(k) {
			t.Errorf("%s survived the sweep", k)
		}
	}
	for _, k := range []string{keptKey, media.ThumbnailKey(keptKey), media.StagingKey(freshPendingKey)} {
		if !m.exists(k) {
			t.Errorf("%s was swept", k)
		}
	}
	if n := m.rows(); n != 2 {
		t.Errorf("%d media rows left, want the 2 of the kept listing", n)
	}

	if rep, err := m.j.SweepMedia(ctx, mediajobs.SweepOptions{PendingOlderThan: 24 * time.Hour}); err != nil || rep != (mediajobs.SweepReport{}) {
		t.Errorf("second sweep = %+v, %v; want nothing to do", rep, err)
	}
}

// TestThumbnailWorkersDoNotCollide runs several workers at once, as
// replicas of the API do: together they make exactly one thumbnail per
// image (SKIP LOCKED hands each row to one worker).
func TestThumbnailWorkersDoNotCollide(t *testing.T) {
	m := newMediaEnv(t)
	listing := m.listing("Many photos")
	for range 6 {
		m.upload(listing, true)
	}
	made := make(chan string, 100)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				did, err := m.j.MakeThumbnail(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if !did {
					return
				}
				made <- "one"
			}
		})
	}
	wg.Wait()
	close(made)
	if n := len(made); n != 6 {
		t.Errorf("%d thumbnails made, want 6", n)
	}
	var missing int
	if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM listing_media WHERE thumbnail_key IS NULL OR thumbnail_key = object_key`).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Errorf("%d images without their own thumbnail", missing)
	}
}

// TestUndecodableImageFallsBackToTheOriginal: a thumbnail that cannot be
// made is not retried forever; the original stands in for it.
func TestUndecodableImageFallsBackToTheOriginal(t *testing.T) {
	m := newMediaEnv(t)
	listing := m.listing("Odd photo")
	// A valid PNG header (so confirmation passes) with corrupt image data.
	img := mediatest.PNG(40, 30)
	img = append(img[:len(img)-30:len(img)-30], make([]byte, 30)...)
	up, err := m.c.CreateMediaUpload(ctx, m.seller, listing, "image/png", int64(len(img)), "")
	if err != nil {
		t.Fatal(err)
	}
	mediatest.Upload(t, up.Upload, img)
	if _, err := m.c.ConfirmMediaUpload(ctx, m.seller, listing, up.ID.String()); err != nil {
		t.Fatal(err)
	}
	m.makeThumbnails()
	var thumb string
	if err := m.e.PG.QueryRow(ctx, `SELECT thumbnail_key FROM listing_media WHERE id = $1`, up.ID).Scan(&thumb); err != nil {
		t.Fatal(err)
	}
	if thumb != media.FinalKey(up.Fields["key"]) {
		t.Errorf("thumbnail_key = %q, want the original's key %q", thumb, media.FinalKey(up.Fields["key"]))
	}
	if s := m.thumbState(up.ID.String()); s.errMsg == nil || s.attempts != 1 {
		t.Errorf("the image: %+v, want failed at once with its reason", s)
	}
	if did, err := m.j.MakeThumbnail(ctx); did || err != nil {
		t.Errorf("MakeThumbnail = %v, %v; want nothing left to do", did, err)
	}
}
