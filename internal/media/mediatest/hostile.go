package mediatest

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// ManyScansJPEG is a w×h greyscale progressive JPEG of the given number of
// scans, each a few bytes: AC scans that end every block at once with
// end-of-band runs. It is tiny, yet Go's decoder walks every block of the
// image once per scan, so decoding a 7000×7000 one with 200 scans takes
// tens of seconds of CPU and hundreds of MiB.
func ManyScansJPEG(w, h, scans int) []byte {
	var b bytes.Buffer
	segment := func(marker byte, body []byte) {
		b.Write([]byte{0xFF, marker})
		_ = binary.Write(&b, binary.BigEndian, uint16(len(body)+2))
		b.Write(body)
	}
	b.Write([]byte{0xFF, 0xD8})                                         // SOI
	segment(0xDB, append([]byte{0x00}, bytes.Repeat([]byte{1}, 64)...)) // DQT 0: all ones
	sof := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 1, 1, 0x11, 0}
	segment(0xC2, sof) // SOF2: progressive, one component
	// DHT, AC table 0: 15 codes of 4 bits, for EOB0..EOB14 (symbol r<<4:
	// a run of 2^r blocks plus r more bits).
	dht := []byte{0x10}
	counts := make([]byte, 16)
	counts[3] = 15
	dht = append(dht, counts...)
	for r := range 15 {
		dht = append(dht, byte(r<<4))
	}
	segment(0xC4, dht)
	blocks := ((w + 7) / 8) * ((h + 7) / 8)
	for range scans {
		segment(0xDA, []byte{1, 1, 0x00, 1, 63, 0x00}) // SOS: component 1, AC 1..63, no approximation
		var bw bitWriter
		for left := blocks; left > 0; {
			run := min(left, 1<<15-1)
			r := 0
			for 1<<(r+1) <= run {
				r++
			}
			bw.write(uint32(r), 4) // the code of symbol r<<4 is r
			bw.write(uint32(run-1<<r), r)
			left -= run
		}
		b.Write(bw.flush())
	}
	b.Write([]byte{0xFF, 0xD9}) // EOI
	return b.Bytes()
}

// bitWriter packs entropy-coded bits, stuffing a zero after each 0xFF.
type bitWriter struct {
	out   []byte
	acc   uint32
	nbits int
}

func (w *bitWriter) write(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | (v>>i)&1
		w.nbits++
		if w.nbits == 8 {
			w.emit()
		}
	}
}

func (w *bitWriter) emit() {
	w.out = append(w.out, byte(w.acc))
	if byte(w.acc) == 0xFF {
		w.out = append(w.out, 0)
	}
	w.acc, w.nbits = 0, 0
}

func (w *bitWriter) flush() []byte {
	for w.nbits != 0 {
		w.write(1, 1) // pad with ones
	}
	return w.out
}

// Uniform16BitPNG is a w×h RGBA PNG of 16 bits per sample, all zero (h
// must be a multiple of 70): at 7000×7000 it is about 380 KB, and decoding
// it takes 8 bytes a pixel. Its pixel data, every byte zero, filter bytes
// included, is one deflated run of 70 rows repeated: a back-reference
// into zeros finds zeros, so making it costs neither the memory nor the
// time of compressing the whole.
func Uniform16BitPNG(w, h int) []byte {
	const rowsPerRun = 70
	if h%rowsPerRun != 0 {
		panic(fmt.Sprintf("Uniform16BitPNG: height %d is not a multiple of %d", h, rowsPerRun))
	}
	runLen := rowsPerRun * (1 + 8*w)
	var run bytes.Buffer
	fw, _ := flate.NewWriter(&run, flate.BestCompression)
	if _, err := fw.Write(make([]byte, runLen)); err != nil {
		panic(fmt.Sprintf("compress png: %v", err))
	}
	if err := fw.Flush(); err != nil { // non-final blocks, ending on a byte
		panic(fmt.Sprintf("compress png: %v", err))
	}
	idat := []byte{0x78, 0xDA} // zlib, deflate, 32 KiB window
	for range h / rowsPerRun {
		idat = append(idat, run.Bytes()...)
	}
	idat = append(idat, 0x01, 0x00, 0x00, 0xFF, 0xFF) // an empty final stored block
	total := uint64(h) * uint64(1+8*w)
	idat = binary.BigEndian.AppendUint32(idat, uint32(total%65521)<<16|1) // Adler-32 of zeros
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		c := append([]byte(typ), data...)
		b.Write(c)
		_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(c))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 16, 6, 0, 0, 0) // 16 bits, RGBA, deflate, no filter method, not interlaced
	chunk("IHDR", ihdr)
	chunk("IDAT", idat)
	chunk("IEND", nil)
	return b.Bytes()
}
