package media_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/media/mediatest"
)

// TestInspectRefusesCostlyImages: what would cost a thumbnailer seconds
// of CPU or hundreds of MiB is refused from its header and its markers,
// while ordinary images pass.
func TestInspectRefusesCostlyImages(t *testing.T) {
	lossless := mediatest.ManyScansJPEG(64, 64, 1)
	lossless[bytes.Index(lossless, []byte{0xFF, 0xC2})+1] = 0xC3 // SOF3
	for _, tc := range []struct {
		name        string
		data        []byte
		contentType string
		wantInvalid string // "" = accepted
	}{
		{"progressive jpeg, standard scan count", mediatest.ManyScansJPEG(640, 480, 10), "image/jpeg", ""},
		{"progressive jpeg at the pixel cap, scan limit", mediatest.ManyScansJPEG(7000, 7000, media.MaxJPEGScans), "image/jpeg", ""},
		{"7000x7000 jpeg of 200 scans", mediatest.ManyScansJPEG(7000, 7000, 200), "image/jpeg", "more than 32 scans"},
		{"small jpeg of 3000 scans", mediatest.ManyScansJPEG(3000, 2000, 3000), "image/jpeg", "more than 32 scans"},
		{"lossless jpeg", lossless, "image/jpeg", "SOF3"},
		{"16-bit png at the pixel cap", mediatest.Uniform16BitPNG(7000, 7000), "image/png", "16 bits per sample"},
		{"interlaced png", interlaced(mediatest.PNG(40, 30)), "image/png", "interlaced"},
		{"8-bit png", mediatest.PNG(40, 30), "image/png", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.data) > 1<<20 {
				t.Fatalf("the input is %d bytes; it should be small", len(tc.data))
			}
			_, err := media.Inspect(bytes.NewReader(tc.data), tc.contentType)
			if tc.wantInvalid == "" {
				if err != nil {
					t.Fatalf("Inspect: %v", err)
				}
				return
			}
			if !errors.Is(err, media.ErrInvalidImage) || !strings.Contains(err.Error(), tc.wantInvalid) {
				t.Fatalf("err = %v, want ErrInvalidImage with %q", err, tc.wantInvalid)
			}
		})
	}
}

// TestThumbnailRefusesBeforeDecoding: Thumbnail holds images confirmed
// before a check existed to the same checks, before it decodes anything.
func TestThumbnailRefusesBeforeDecoding(t *testing.T) {
	start := time.Now()
	_, err := media.Thumbnail(mediatest.ManyScansJPEG(7000, 7000, 200), "image/jpeg")
	if !errors.Is(err, media.ErrInvalidImage) {
		t.Fatalf("err = %v, want ErrInvalidImage", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Thumbnail took %v to refuse", d)
	}
}

// interlaced sets the interlace method of a PNG's header, with a valid CRC.
func interlaced(p []byte) []byte {
	p = bytes.Clone(p)
	p[8+8+12] = 1
	binary.BigEndian.PutUint32(p[8+8+13:], crc32.ChecksumIEEE(p[8+4:8+8+13]))
	return p
}
