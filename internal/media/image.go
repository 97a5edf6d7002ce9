package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"slices"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// ContentTypes are the image types that may be uploaded.
var ContentTypes = []string{"image/jpeg", "image/png", "image/webp"}

const (
	// MaxPixels refuses decompression bombs: a small file that claims a
	// huge canvas would cost the thumbnailer gigabytes to decode.
	MaxPixels = 50_000_000
	// ThumbnailSize bounds both sides of a thumbnail.
	ThumbnailSize = 320
	// sniffLen is how much of an object the magic-number check needs.
	sniffLen = 12
)

// ErrInvalidImage means the bytes are not an acceptable image of the
// declared type. Its messages are safe to show to the uploader.
var ErrInvalidImage = errors.New("invalid image")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidImage, fmt.Sprintf(format, args...))
}

// Sniff names the image type that head starts with, or "".
func Sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return "image/jpeg"
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return "image/webp"
	}
	return ""
}

// Info is what Inspect learns about an image.
type Info struct {
	// Width and Height are as displayed: a JPEG's EXIF orientation that
	// turns it sideways swaps them.
	Width, Height int
}

// Inspect reads an image and checks that it is what contentType says and
// that a thumbnailer may decode it: the magic number matches, the header
// decodes, the canvas is within MaxPixels, and the decode stays within
// the decode budget (MaxJPEGScans, MaxDecodeBytes, no 16-bit or interlaced
// PNG). A JPEG is read to its end, to count its scans; a PNG or WebP only
// as far as its header. Failures of r itself are returned as they are;
// anything wrong with the bytes is ErrInvalidImage.
func Inspect(r io.Reader, contentType string) (Info, error) {
	rr := &recordingReader{r: r}
	magic := make([]byte, sniffLen)
	n, err := io.ReadFull(rr, magic)
	if rr.err != nil {
		return Info{}, rr.err
	}
	if err != nil && n == 0 {
		return Info{}, invalid("the file is empty")
	}
	if got := Sniff(magic[:n]); got != contentType {
		if got == "" {
			return Info{}, invalid("the file is not a JPEG, PNG or WebP image")
		}
		return Info{}, invalid("the file is %s, not %s as declared", got, contentType)
	}
	src := io.MultiReader(bytes.NewReader(magic[:n]), rr)

	var (
		cfg        image.Config
		head       []byte // the header, for the EXIF orientation
		decodeCost func(image.Config) int64
	)
	switch contentType {
	case "image/jpeg":
		h, err := walkJPEG(src)
		if rr.err != nil {
			return Info{}, rr.err
		}
		if errors.Is(err, errTooManyScans) {
			return Info{}, invalid("the JPEG has more than %d scans; save it as a baseline JPEG, or as a progressive one with the standard scans", MaxJPEGScans)
		}
		if err != nil {
			return Info{}, err
		}
		head = h.head
		if cfg, err = jpeg.DecodeConfig(bytes.NewReader(head)); err != nil {
			return Info{}, invalid("the %s header does not decode: %v", contentType, err)
		}
		if h.scans == 0 {
			return Info{}, invalid("the JPEG has no image data")
		}
		decodeCost = func(image.Config) int64 { return h.decodeBytes() }
	default:
		var hb bytes.Buffer
		decodeConfig, _ := codecs(contentType)
		cfg, err = decodeConfig(io.TeeReader(src, &hb))
		if rr.err != nil {
			return Info{}, rr.err
		}
		if err != nil {
			return Info{}, invalid("the %s header does not decode: %v", contentType, err)
		}
		bpp := int64(4) // WebP: lossless decodes to 4 bytes a pixel, lossy to fewer
		if contentType == "image/png" {
			if bpp, err = pngHeader(hb.Bytes()); err != nil {
				return Info{}, err
			}
		}
		decodeCost = func(c image.Config) int64 { return int64(c.Width) * int64(c.Height) * bpp }
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return Info{}, invalid("the image is %dx%d; at most %d pixels are allowed", cfg.Width, cfg.Height, MaxPixels)
	}
	if cost := decodeCost(cfg); cost > MaxDecodeBytes {
		return Info{}, invalid("decoding the %dx%d image would take %d MiB; at most %d MiB are allowed (a baseline JPEG needs less than a progressive one)",
			cfg.Width, cfg.Height, cost>>20, MaxDecodeBytes>>20)
	}
	info := Info{Width: cfg.Width, Height: cfg.Height}
	if contentType == "image/jpeg" && jpegOrientation(head) >= 5 {
		info.Width, info.Height = info.Height, info.Width
	}
	return info, nil
}

// Thumbnail decodes an image and returns a JPEG of it that fits in
// ThumbnailSize×ThumbnailSize, upright, on white where it was transparent.
// It never enlarges.
func Thumbnail(data []byte, contentType string) ([]byte, error) {
	_, decode := codecs(contentType)
	if decode == nil {
		return nil, invalid("unsupported type %q", contentType)
	}
	// Images confirmed before a check was added are held to it too.
	if _, err := Inspect(bytes.NewReader(data), contentType); err != nil {
		return nil, err
	}
	src, err := decode(bytes.NewReader(data))
	if err != nil {
		return nil, invalid("the %s does not decode: %v", contentType, err)
	}
	orientation := 1
	if contentType == "image/jpeg" {
		orientation = jpegOrientation(data)
	}
	sb := src.Bounds()
	w, h := fit(sb.Dx(), sb.Dy(), orientation >= 5)
	scaled := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(scaled, scaled.Bounds(), image.White, image.Point{}, draw.Src)
	draw.CatmullRom.Scale(scaled, scaled.Bounds(), src, sb, draw.Over, nil)
	var out bytes.Buffer
	if err := jpeg.Encode(&out, orient(scaled, orientation), &jpeg.Options{Quality: 80}); err != nil {
		return nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return out.Bytes(), nil
}

// codecs returns the decoders of one content type; the package registry
// (image.Decode) would accept any registered format, not just the declared one.
func codecs(contentType string) (func(io.Reader) (image.Config, error), func(io.Reader) (image.Image, error)) {
	switch contentType {
	case "image/jpeg":
		return jpeg.DecodeConfig, jpeg.Decode
	case "image/png":
		return png.DecodeConfig, png.Decode
	case "image/webp":
		return webp.DecodeConfig, webp.Decode
	}
	return nil, nil
}

// IsContentType reports whether ct may be uploaded.
func IsContentType(ct string) bool { return slices.Contains(ContentTypes, ct) }

// fit scales w×h down to fit ThumbnailSize on each side of the displayed
// image (which is h×w when turned), keeping the aspect ratio.
func fit(w, h int, turned bool) (int, int) {
	dw, dh := w, h
	if turned {
		dw, dh = h, w
	}
	scale := min(1, float64(ThumbnailSize)/float64(dw), float64(ThumbnailSize)/float64(dh))
	return max(1, int(float64(w)*scale+0.5)), max(1, int(float64(h)*scale+0.5))
}

// orient applies an EXIF orientation (1..8), so the thumbnail is upright
// without metadata.
func orient(src *image.RGBA, o int) image.Image {
	if o <= 1 || o > 8 {
		return src
	}
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		for x := range dw {
			var sx, sy int
			switch o {
			case 2: // mirrored
				sx, sy = w-1-x, y
			case 3: // upside down
				sx, sy = w-1-x, h-1-y
			case 4: // mirrored upside down
				sx, sy = x, h-1-y
			case 5: // transposed
				sx, sy = y, x
			case 6: // turned left: rotate 90° clockwise to show
				sx, sy = y, h-1-x
			case 7: // transversed
				sx, sy = w-1-y, h-1-x
			case 8: // turned right: rotate 90° counter-clockwise to show
				sx, sy = w-1-y, x
			}
			dst.SetRGBA(x, y, src.RGBAAt(sx, sy))
		}
	}
	return dst
}

// jpegOrientation reads the EXIF orientation tag of a JPEG's APP1 segment;
// 1 (upright) when there is none. Cameras record sideways photos this way
// and browsers honour it, so the thumbnail and the dimensions must too.
func jpegOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 1
	}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			return 1
		}
		marker := b[i+1]
		switch {
		case marker == 0xFF: // fill byte
			i++
			continue
		case marker == 0x01 || marker >= 0xD0 && marker <= 0xD7: // no length
			i += 2
			continue
		case marker == 0xDA || marker == 0xD9: // image data: no metadata follows
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		if seg := b[i+4 : i+2+n]; marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return exifOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

// exifOrientation finds tag 0x0112 in the first IFD of a TIFF structure.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	off := int64(bo.Uint32(t[4:]))
	if off < 8 || off+2 > int64(len(t)) {
		return 1
	}
	entries := int64(bo.Uint16(t[off:]))
	for k := range entries {
		e := off + 2 + 12*k
		if e+12 > int64(len(t)) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if bo.Uint16(t[e+2:]) != 3 { // SHORT
			return 1
		}
		if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}

// recordingReader remembers the first error of its reader that is not
// io.EOF, so a store failure is told apart from a bad image.
type recordingReader struct {
	r   io.Reader
	err error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}
