package media_test

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/media/mediatest"
)

// TestSandbox: the child process makes the thumbnail of an ordinary image,
// refuses an invalid one, gives up a decode that passes its CPU or time
// budget within that budget, and dies at once when its caller gives up.
func TestSandbox(t *testing.T) {
	ctx := context.Background()
	// Passes Inspect (MaxJPEGScans scans), yet walks 765,625 blocks per
	// scan: seconds of CPU.
	costly := mediatest.ManyScansJPEG(7000, 7000, media.MaxJPEGScans)

	t.Run("ordinary image", func(t *testing.T) {
		thumb, err := media.DefaultSandbox.Thumbnail(ctx, mediatest.PNG(400, 300), "image/png")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb))
		if err != nil || cfg.Width != 320 || cfg.Height != 240 {
			t.Fatalf("thumbnail %+v, %v; want a 320x240 JPEG", cfg, err)
		}
	})
	t.Run("invalid image", func(t *testing.T) {
		_, err := media.DefaultSandbox.Thumbnail(ctx, mediatest.ManyScansJPEG(7000, 7000, 200), "image/jpeg")
		if !errors.Is(err, media.ErrInvalidImage) {
			t.Fatalf("err = %v, want ErrInvalidImage", err)
		}
	})
	t.Run("CPU budget", func(t *testing.T) {
		s := media.Sandbox{CPU: time.Second, Memory: 1 << 30, Wall: time.Minute}
		start := time.Now()
		_, err := s.Thumbnail(ctx, costly, "image/jpeg")
		if !errors.Is(err, media.ErrBudgetExceeded) {
			t.Fatalf("err = %v, want ErrBudgetExceeded", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("gave up after %v", d)
		}
	})
	t.Run("time budget", func(t *testing.T) {
		s := media.Sandbox{CPU: time.Minute, Memory: 1 << 30, Wall: 500 * time.Millisecond}
		start := time.Now()
		_, err := s.Thumbnail(ctx, costly, "image/jpeg")
		if !errors.Is(err, media.ErrBudgetExceeded) {
			t.Fatalf("err = %v, want ErrBudgetExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("gave up after %v", d)
		}
	})
	t.Run("memory budget", func(t *testing.T) {
		if media.RaceEnabled {
			t.Skip("the race detector's shadow memory does not fit a memory limit")
		}
		// One scan: cheap in CPU, but 245 MiB of coefficients and pixels.
		s := media.Sandbox{CPU: time.Minute, Memory: 128 << 20, Wall: time.Minute}
		_, err := s.Thumbnail(ctx, mediatest.ManyScansJPEG(7000, 7000, 1), "image/jpeg")
		if !errors.Is(err, media.ErrBudgetExceeded) {
			t.Fatalf("err = %v, want ErrBudgetExceeded", err)
		}
	})
	t.Run("caller gives up", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := media.DefaultSandbox.Thumbnail(ctx, costly, "image/jpeg")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's", err)
		}
		if d := time.Since(start); d > time.Second+300*time.Millisecond {
			t.Errorf("returned after %v", d)
		}
	})
}
