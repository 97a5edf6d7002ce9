package mediajobs_test

import (
	"context"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/media/mediatest"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// uploadBytes creates and uploads one image of the seller's and confirms
// it; it returns the media id and ConfirmMediaUpload's error.
func (m *mediaEnv) uploadBytes(listingID, contentType string, img []byte) (string, error) {
	m.t.Helper()
	up, err := m.c.CreateMediaUpload(ctx, m.seller, listingID, contentType, int64(len(img)), "")
	if err != nil {
		m.t.Fatal(err)
	}
	mediatest.Upload(m.t, up.Upload, img)
	_, err = m.c.ConfirmMediaUpload(ctx, m.seller, listingID, up.ID.String())
	return up.ID.String(), err
}

type thumbState struct {
	key, objectKey string
	attempts       int
	errMsg         *string
	retryDue       bool
}

func (m *mediaEnv) thumbState(id string) thumbState {
	m.t.Helper()
	var s thumbState
	var key *string
	if err := m.e.PG.QueryRow(ctx, `SELECT thumbnail_key, object_key, thumbnail_attempts, thumbnail_error,
		coalesce(thumbnail_retry_at <= now(), true) FROM listing_media WHERE id = $1`, id).
		Scan(&key, &s.objectKey, &s.attempts, &s.errMsg, &s.retryDue); err != nil {
		m.t.Fatal(err)
	}
	if key != nil {
		s.key = *key
	}
	return s
}

// TestConfirmationRefusesCostlyImages: the hostile images of a few hundred
// KB that cost Go's decoders tens of seconds and hundreds of MiB are
// refused at confirmation, and their row and object are removed.
func TestConfirmationRefusesCostlyImages(t *testing.T) {
	m := newMediaEnv(t)
	listing := m.listing("Hostile photos")
	for _, tc := range []struct {
		name, contentType string
		img               []byte
	}{
		{"7000x7000 progressive JPEG of 200 scans", "image/jpeg", mediatest.ManyScansJPEG(7000, 7000, 200)},
		{"3000-scan JPEG", "image/jpeg", mediatest.ManyScansJPEG(3000, 2000, 3000)},
		{"16-bit PNG at the pixel cap", "image/png", mediatest.Uniform16BitPNG(7000, 7000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.uploadBytes(listing, tc.contentType, tc.img)
			if app.ErrorCode(err) != app.CodeFailedPrecondition {
				t.Fatalf("ConfirmMediaUpload of %d bytes = %v, want FailedPrecondition", len(tc.img), err)
			}
			t.Log(err)
		})
	}
	if n := m.rows(); n != 0 {
		t.Errorf("%d media rows left, want none", n)
	}
}

// TestCostlyImageDoesNotBlockOthers: an image that passes confirmation
// but whose decode passes the budget is given up within the budget, in a
// child process (the worker's own heap does not grow with the decode),
// retried later while other sellers' images get their thumbnails, and
// marked failed with its reason after the last attempt.
func TestCostlyImageDoesNotBlockOthers(t *testing.T) {
	m := newMediaEnv(t)
	m.j = m.j.WithSandbox(media.Sandbox{CPU: time.Second, Memory: 1 << 30, Wall: 3 * time.Second})
	costly, err := m.uploadBytes(m.listing("Costly"), "image/jpeg", mediatest.ManyScansJPEG(7000, 7000, media.MaxJPEGScans))
	if err != nil {
		t.Fatal(err)
	}
	other := newMediaEnvOn(t, m, "other@example.com")
	ordinary, err := other.uploadBytes(other.listing("Ordinary"), "image/png", mediatest.PNG(400, 300))
	if err != nil {
		t.Fatal(err)
	}

	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(sample)
	allocated := sample[0].Value.Uint64()
	start := time.Now()
	m.makeThumbnails()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the worker took %v", d)
	}
	metrics.Read(sample)
	if a := sample[0].Value.Uint64() - allocated; a > 64<<20 {
		t.Errorf("the worker allocated %d MiB; the decode ran in its own heap", a>>20)
	}
	if s := m.thumbState(ordinary); s.key != media.ThumbnailKey(s.objectKey) || s.errMsg != nil {
		t.Errorf("the ordinary image: %+v, want its thumbnail", s)
	}
	s := m.thumbState(costly)
	if s.key != "" || s.attempts != 1 || s.errMsg == nil || s.retryDue {
		t.Fatalf("the costly image after one attempt: %+v, want a retry later with the reason", s)
	}
	t.Log(*s.errMsg)

	for attempt := 2; attempt <= 3; attempt++ {
		if _, err := m.e.PG.Exec(ctx, `UPDATE listing_media SET thumbnail_retry_at = now() WHERE id = $1`, costly); err != nil {
			t.Fatal(err)
		}
		m.makeThumbnails()
	}
	s = m.thumbState(costly)
	if s.key != s.objectKey || s.attempts != 3 || s.errMsg == nil {
		t.Fatalf("the costly image after three attempts: %+v, want failed, the original standing in", s)
	}
	if did, err := m.j.MakeThumbnail(ctx); did || err != nil {
		t.Errorf("MakeThumbnail = %v, %v; want nothing left to do", did, err)
	}
}

// TestThumbnailShutdownIsPrompt: the worker does not wait for a decode:
// cancelling it kills the child, and the image is left untouched for the
// next run.
func TestThumbnailShutdownIsPrompt(t *testing.T) {
	m := newMediaEnv(t)
	costly, err := m.uploadBytes(m.listing("Costly"), "image/jpeg", mediatest.ManyScansJPEG(7000, 7000, media.MaxJPEGScans))
	if err != nil {
		t.Fatal(err)
	}
	m.j = m.j.WithSandbox(media.Sandbox{CPU: time.Minute, Memory: 1 << 30, Wall: time.Minute})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.j.RunThumbnails(runCtx, time.Second)
	}()
	// The row is locked once the worker holds it; the decode follows.
	for locked := false; !locked; {
		var n int
		if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM listing_media WHERE id = $1 FOR UPDATE SKIP LOCKED) s`, costly).Scan(&n); err != nil {
			t.Fatal(err)
		}
		locked = n == 0
		if !wait.Sleep(ctx, 10*time.Millisecond) {
			t.Fatal("interrupted")
		}
	}
	wait.Sleep(ctx, 300*time.Millisecond) // into the decode
	cancelled := time.Now()
	cancel()
	select {
	case <-done:
		if d := time.Since(cancelled); d > time.Second {
			t.Errorf("RunThumbnails returned %v after cancel", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunThumbnails still running 5 s after cancel")
	}
	if s := m.thumbState(costly); s.key != "" || s.attempts != 0 {
		t.Errorf("the image after a shutdown: %+v, want untouched", s)
	}
}

// newMediaEnvOn is another seller on m's database and bucket.
func newMediaEnvOn(t *testing.T, m *mediaEnv, email string) *mediaEnv {
	u, err := m.c.SignUp(ctx, email, "correct horse", "Other seller")
	if err != nil {
		t.Fatal(err)
	}
	o := *m
	o.seller = u.UserID
	return &o
}
