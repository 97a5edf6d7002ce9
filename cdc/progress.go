package cdc

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress reports a bulk load: a redrawn bar with rows/s and an ETA on a
// terminal, and a plain line every few seconds anywhere else (logs, CI).
type progress struct {
	w        io.Writer
	terminal bool
	name     string
	total    int64

	mu      sync.Mutex
	n       int64
	start   time.Time
	printed time.Time
}

func newProgress(w io.Writer, terminal bool, name string, total int64) *progress {
	p := &progress{w: w, terminal: terminal, name: name, total: total, start: time.Now()}
	p.print(false)
	return p
}

func (p *progress) add(n int) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(n)
	gap := 5 * time.Second
	if p.terminal {
		gap = 100 * time.Millisecond
	}
	if time.Since(p.printed) >= gap {
		p.print(false)
	}
}

func (p *progress) done() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.print(true)
}

func (p *progress) print(final bool) {
	if p.w == nil {
		return
	}
	p.printed = time.Now()
	elapsed := time.Since(p.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.n) / elapsed.Seconds()
	}
	frac := 1.0
	if p.total > 0 {
		frac = min(1, float64(p.n)/float64(p.total))
	}
	eta := "?"
	if rate > 0 && p.total >= p.n {
		eta = time.Duration(float64(p.total-p.n) / rate * float64(time.Second)).Round(time.Second).String()
	}
	if final {
		eta = "done in " + elapsed.Round(time.Millisecond).String()
	} else {
		eta = "ETA " + eta
	}
	line := fmt.Sprintf("%-9s %5.1f%% %d/%d  %.0f rows/s  %s", p.name, 100*frac, p.n, p.total, rate, eta)
	if p.terminal {
		const width = 30
		filled := int(frac * width)
		bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprintf(p.w, "\r\033[K[%s] %s%s", bar, line, end)
		return
	}
	fmt.Fprintln(p.w, "rebuild: "+line)
}
