package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// The decode budget: what an image may make a thumbnailer spend, judged
// from its bytes before anything decodes them (see docs/media.md,
// "Decode budget").
const (
	// MaxJPEGScans bounds a JPEG's scans (SOS segments). Go's decoder walks
	// every block of the image once per scan, however few bytes the scan
	// has, so scans multiply the cost of a canvas. libjpeg's standard
	// progressive script writes 10 scans for a colour photo and 18 for a
	// CMYK one, and a baseline JPEG has at most one per component.
	MaxJPEGScans = 32
	// MaxDecodeBytes bounds the memory a decoder needs for the pixels (and,
	// for a progressive JPEG, the coefficients it keeps between scans), as
	// computed from the header by decodeBytes. Any 8-bit PNG or baseline
	// JPEG at MaxPixels fits; a progressive 4:2:0 JPEG fits up to about
	// MaxPixels.
	MaxDecodeBytes = 384 << 20
)

// jpegHeader is what the marker walk learns about a JPEG.
type jpegHeader struct {
	head        []byte // every byte before the first scan's data: the metadata and the frame header
	sof         byte   // the frame's marker: 0xC0 baseline, 0xC1 extended, 0xC2 progressive
	width       int
	height      int
	comps       [][2]int // each component's horizontal and vertical sampling factors
	scans       int
	progressive bool
}

var errTooManyScans = errors.New("too many scans")

// walkJPEG reads a JPEG's markers to its end (EOI, or the end of r),
// skipping the entropy-coded data between them, and counts the scans. It
// stops early with errTooManyScans once there are more than MaxJPEGScans.
// A structure it cannot follow is ErrInvalidImage; an error of r itself is
// returned as it is.
func walkJPEG(r io.Reader) (jpegHeader, error) {
	var h jpegHeader
	var head bytes.Buffer
	br := bufio.NewReaderSize(r, 32<<10)
	inHead := true
	readByte := func() (byte, error) {
		b, err := br.ReadByte()
		if err == nil && inHead {
			head.WriteByte(b)
		}
		return b, err
	}
	readFull := func(p []byte) error {
		_, err := io.ReadFull(br, p)
		if err == nil && inHead {
			head.Write(p)
		}
		return err
	}
	eof := func(err error) error {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		return err
	}
	done := func(err error) (jpegHeader, error) {
		h.head = head.Bytes()
		return h, err
	}

	var soi [2]byte
	if err := readFull(soi[:]); err != nil || soi != [2]byte{0xFF, 0xD8} {
		return done(eof(err)) // Sniff has checked the magic; DecodeConfig explains
	}
	inScan := false // between an SOS header and the next marker, where 0xFF 0x00 is data
	for {
		b, err := readByte()
		if err != nil {
			return done(eof(err))
		}
		if b != 0xFF {
			continue // scan data, or stray bytes between segments, which decoders skip too
		}
		m, err := readByte()
		for err == nil && m == 0xFF { // fill bytes
			m, err = readByte()
		}
		if err != nil {
			return done(eof(err))
		}
		switch {
		case inScan && (m == 0x00 || m >= 0xD0 && m <= 0xD7): // stuffed 0xFF, restart marker
			continue
		case m == 0xD9: // EOI
			return done(nil)
		case m == 0x01 || m >= 0xD0 && m <= 0xD7:
			continue // no length
		}
		inScan = false
		var l [2]byte
		if err := readFull(l[:]); err != nil {
			return done(eof(err))
		}
		n := int(binary.BigEndian.Uint16(l[:])) - 2
		if n < 0 {
			return done(invalid("the JPEG has a segment of length %d", n+2))
		}
		seg := make([]byte, n)
		if err := readFull(seg); err != nil {
			return done(eof(err))
		}
		switch {
		case m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC: // SOFn
			if h.sof != 0 {
				return done(invalid("the JPEG has more than one frame"))
			}
			if m > 0xC2 {
				return done(invalid("the JPEG is of a kind (SOF%d: lossless, hierarchical or arithmetic-coded) that is not accepted; save it as a baseline or progressive JPEG", m-0xC0))
			}
			if len(seg) < 6 || len(seg) < 6+3*int(seg[5]) || seg[5] == 0 {
				return done(invalid("the JPEG frame header is malformed"))
			}
			h.sof, h.progressive = m, m == 0xC2
			h.height = int(binary.BigEndian.Uint16(seg[1:]))
			h.width = int(binary.BigEndian.Uint16(seg[3:]))
			for c := range int(seg[5]) {
				s := seg[6+3*c+1]
				h.comps = append(h.comps, [2]int{int(s >> 4), int(s & 0x0F)})
			}
		case m == 0xDA: // SOS
			h.scans++
			if h.scans > MaxJPEGScans {
				return done(errTooManyScans)
			}
			inHead, inScan = false, true
		}
	}
}

// jpegDecodeBytes is what Go's decoder allocates for a frame: a plane of
// one byte a sample per component, padded to whole MCUs, and, when the
// JPEG is progressive, the 64 int32 coefficients of every block besides.
func (h jpegHeader) decodeBytes() int64 {
	hmax, vmax := 1, 1
	for _, c := range h.comps {
		hmax, vmax = max(hmax, c[0]), max(vmax, c[1])
	}
	mxx := (int64(h.width) + 8*int64(hmax) - 1) / (8 * int64(hmax))
	myy := (int64(h.height) + 8*int64(vmax) - 1) / (8 * int64(vmax))
	var samples int64
	for _, c := range h.comps {
		samples += mxx * int64(c[0]) * 8 * myy * int64(c[1]) * 8
	}
	if h.progressive {
		return samples * 5
	}
	return samples
}

// pngHeader checks the IHDR of a PNG (the first chunk, right after the
// signature) and returns the bytes a pixel of the decoded image takes.
// 16-bit samples and Adam7 interlacing are refused: a listing photo gains
// nothing from them, and they double or quadruple what the decoder holds.
func pngHeader(b []byte) (bytesPerPixel int64, err error) {
	if len(b) < 8+8+13 || string(b[12:16]) != "IHDR" {
		return 0, nil // DecodeConfig explains
	}
	ihdr := b[16:29]
	depth, colorType, interlace := ihdr[8], ihdr[9], ihdr[12]
	if depth == 16 {
		return 0, invalid("the PNG has 16 bits per sample; save it with 8")
	}
	if interlace != 0 {
		return 0, invalid("the PNG is interlaced; save it without interlacing")
	}
	switch colorType {
	case 0, 3: // grey, paletted: one byte a pixel
		return 1, nil
	}
	return 4, nil // RGB, grey with alpha and RGBA decode to 4 bytes a pixel
}
