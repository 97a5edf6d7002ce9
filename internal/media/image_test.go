package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
)

// A 1×1 lossless WebP (there is no WebP encoder in Go's libraries).
var webp1x1 = []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func filled(w, h int, c color.Color) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	return img
}

// withOrientation inserts an EXIF APP1 segment with the orientation tag
// right after a JPEG's SOI marker, as cameras write it.
func withOrientation(jpg []byte, o uint16) []byte {
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08\x00\x01")    // big-endian, IFD at 8, one entry
	tiff = append(tiff, 0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1) // orientation, SHORT, count 1
	tiff = binary.BigEndian.AppendUint16(tiff, o)
	tiff = append(tiff, 0, 0, 0, 0, 0, 0) // value padding, next IFD = 0
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xFF, 0xE1}
	app1 = binary.BigEndian.AppendUint16(app1, uint16(len(seg)+2))
	app1 = append(app1, seg...)
	return append(append(append([]byte{}, jpg[:2]...), app1...), jpg[2:]...)
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		head []byte
		want string
	}{
		{encodePNG(t, filled(1, 1, color.White)), "image/png"},
		{encodeJPEG(t, filled(1, 1, color.White)), "image/jpeg"},
		{webp1x1, "image/webp"},
		{[]byte("GIF89a"), ""},
		{[]byte("RIFF\x00\x00\x00\x00WAVE"), ""},
		{nil, ""},
	} {
		if got := Sniff(tc.head); got != tc.want {
			t.Errorf("Sniff(%q) = %q, want %q", tc.head[:min(len(tc.head), 12)], got, tc.want)
		}
	}
}

func TestInspect(t *testing.T) {
	pngImg := encodePNG(t, filled(7, 5, color.White))
	for _, tc := range []struct {
		name        string
		data        []byte
		contentType string
		w, h        int
		wantInvalid string // substring of the ErrInvalidImage message; "" = valid
	}{
		{"png", pngImg, "image/png", 7, 5, ""},
		{"jpeg", encodeJPEG(t, filled(9, 4, color.White)), "image/jpeg", 9, 4, ""},
		{"jpeg turned sideways", withOrientation(encodeJPEG(t, filled(9, 4, color.White)), 6), "image/jpeg", 4, 9, ""},
		{"jpeg upside down", withOrientation(encodeJPEG(t, filled(9, 4, color.White)), 3), "image/jpeg", 9, 4, ""},
		{"webp", webp1x1, "image/webp", 1, 1, ""},
		{"png declared as jpeg", pngImg, "image/jpeg", 0, 0, "is image/png, not image/jpeg"},
		{"text declared as png", []byte("hello, world, this is text"), "image/png", 0, 0, "not a JPEG, PNG or WebP"},
		{"empty", nil, "image/png", 0, 0, "empty"},
		{"truncated png", pngImg[:20], "image/png", 0, 0, "does not decode"},
		{"decompression bomb", bigCanvas(t, pngImg, 100_000, 100_000), "image/png", 0, 0, "pixels are allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Inspect(bytes.NewReader(tc.data), tc.contentType)
			if tc.wantInvalid != "" {
				if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), tc.wantInvalid) {
					t.Fatalf("err = %v, want ErrInvalidImage with %q", err, tc.wantInvalid)
				}
				return
			}
			if err != nil || info.Width != tc.w || info.Height != tc.h {
				t.Fatalf("Inspect = %+v, %v; want %dx%d", info, err, tc.w, tc.h)
			}
		})
	}
}

// bigCanvas rewrites a PNG's header to claim w×h pixels, with a valid CRC.
func bigCanvas(t *testing.T, p []byte, w, h uint32) []byte {
	p = bytes.Clone(p)
	ihdr := p[8+8 : 8+8+13] // after the signature and the chunk's length and type
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	binary.BigEndian.PutUint32(p[8+8+13:], crc32.ChecksumIEEE(p[8+4:8+8+13]))
	return p
}

func TestStoreErrorsAreNotInvalidImages(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := Inspect(failingReader{boom}, "image/png")
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalidImage) {
		t.Fatalf("err = %v, want the reader's own error", err)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestThumbnail(t *testing.T) {
	decode := func(t *testing.T, b []byte) image.Image {
		t.Helper()
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("thumbnail is not a JPEG: %v", err)
		}
		return img
	}
	t.Run("bounded, aspect kept", func(t *testing.T) {
		th, err := Thumbnail(encodePNG(t, filled(1000, 500, color.White)), "image/png")
		if err != nil {
			t.Fatal(err)
		}
		if b := decode(t, th).Bounds(); b.Dx() != ThumbnailSize || b.Dy() != ThumbnailSize/2 {
			t.Fatalf("thumbnail is %v, want %dx%d", b, ThumbnailSize, ThumbnailSize/2)
		}
	})
	t.Run("never enlarged", func(t *testing.T) {
		th, err := Thumbnail(webp1x1, "image/webp")
		if err != nil {
			t.Fatal(err)
		}
		if b := decode(t, th).Bounds(); b.Dx() != 1 || b.Dy() != 1 {
			t.Fatalf("thumbnail is %v, want 1x1", b)
		}
	})
	t.Run("transparent becomes white", func(t *testing.T) {
		th, err := Thumbnail(encodePNG(t, filled(4, 4, color.Transparent)), "image/png")
		if err != nil {
			t.Fatal(err)
		}
		if r, g, b, _ := decode(t, th).At(1, 1).RGBA(); r>>8 < 240 || g>>8 < 240 || b>>8 < 240 {
			t.Fatalf("pixel is %d,%d,%d; want white", r>>8, g>>8, b>>8)
		}
	})
	t.Run("upright", func(t *testing.T) {
		// 32×16, red on the left, blue on the right, stored turned left
		// (orientation 6): shown upright it is 16×32, red on top.
		src := filled(32, 16, color.RGBA{B: 255, A: 255})
		for y := range 16 {
			for x := range 16 {
				src.Set(x, y, color.RGBA{R: 255, A: 255})
			}
		}
		th, err := Thumbnail(withOrientation(encodeJPEG(t, src), 6), "image/jpeg")
		if err != nil {
			t.Fatal(err)
		}
		img := decode(t, th)
		if b := img.Bounds(); b.Dx() != 16 || b.Dy() != 32 {
			t.Fatalf("thumbnail is %v, want 16x32", b)
		}
		if r, _, b, _ := img.At(8, 4).RGBA(); r < b {
			t.Errorf("top is not red")
		}
		if r, _, b, _ := img.At(8, 28).RGBA(); b < r {
			t.Errorf("bottom is not blue")
		}
	})
	t.Run("undecodable", func(t *testing.T) {
		if _, err := Thumbnail([]byte("\x89PNG\r\n\x1a\nnot really"), "image/png"); !errors.Is(err, ErrInvalidImage) {
			t.Fatalf("err = %v, want ErrInvalidImage", err)
		}
	})
}

// FuzzInspect: no input makes the header checks or the EXIF parser panic,
// and whatever passes fits the pixel budget.
func FuzzInspect(f *testing.F) {
	jpg := encodeJPEG(f, filled(3, 2, color.White))
	for _, seed := range [][]byte{jpg, withOrientation(jpg, 6), encodePNG(f, filled(2, 3, color.White)), webp1x1, {0xFF, 0xD8, 0xFF, 0xE1, 0, 4}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = jpegOrientation(data)
		for _, ct := range ContentTypes {
			info, err := Inspect(bytes.NewReader(data), ct)
			if err == nil && (info.Width <= 0 || info.Height <= 0 || info.Width*info.Height > MaxPixels) {
				t.Fatalf("%s accepted as %dx%d", ct, info.Width, info.Height)
			}
		}
	})
}

func TestJPEGDecodeBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    jpegHeader
		want int64
	}{
		{"grey baseline", jpegHeader{width: 16, height: 8, comps: [][2]int{{1, 1}}}, 16 * 8},
		{"grey progressive", jpegHeader{width: 16, height: 8, comps: [][2]int{{1, 1}}, progressive: true}, 5 * 16 * 8},
		{"4:2:0, padded to whole MCUs", jpegHeader{width: 17, height: 16, comps: [][2]int{{2, 2}, {1, 1}, {1, 1}}}, 32*16 + 2*16*8},
		{"4:4:4 progressive at the pixel cap", jpegHeader{width: 7000, height: 7000, comps: [][2]int{{1, 1}, {1, 1}, {1, 1}}, progressive: true}, 5 * 3 * 7000 * 7000},
	} {
		if got := tc.h.decodeBytes(); got != tc.want {
			t.Errorf("%s: decodeBytes = %d, want %d", tc.name, got, tc.want)
		}
	}
	if (jpegHeader{width: 7000, height: 7000, comps: [][2]int{{1, 1}, {1, 1}, {1, 1}}, progressive: true}).decodeBytes() <= MaxDecodeBytes {
		t.Error("a progressive 4:4:4 JPEG at the pixel cap fits the decode budget")
	}
}
