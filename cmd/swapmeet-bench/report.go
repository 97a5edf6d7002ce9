package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// Verdicts. A missed target is a finding; a failed check is a bug.
const (
	verdictOK   = "ok"
	verdictMiss = "MISS"
	verdictFail = "FAIL"
	// verdictNotMeasured: the run ended before the figure could be read,
	// and what it did see decides nothing.
	verdictNotMeasured = "not measured"
	// verdictNone marks a figure that has no target.
	verdictNone = "-"
)

// row is one line of the final table.
type row struct {
	figure    string
	measured  string
	reference string
	ratio     string
	target    string
	verdict   string
}

// broken is the row of a figure that something broke.
func broken(figure string) row {
	return row{figure: figure, measured: "broken: see below", verdict: verdictFail}
}

// figure is a group of rows measured together.
type figure struct {
	name string
	run  func() ([]row, error)
}

// measureAll runs the figures one after the other. The rows a figure
// measured before it failed stand, and what it did not measure gets a
// broken row. Once ctx is done, no further figure starts.
func measureAll(ctx context.Context, figures []figure) ([]row, error) {
	var rows []row
	var errs []error
	for _, f := range figures {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%s: not run: %w", f.name, context.Cause(ctx)))
			continue
		}
		got, err := f.run()
		if err != nil {
			switch {
			case len(got) == 0:
				got = []row{broken(f.name)}
			case got[len(got)-1].verdict != verdictFail:
				got = append(got, broken(f.name+": the rest"))
			}
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
		rows = append(rows, got...)
	}
	return rows, errors.Join(errs...)
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "figure\tmeasured\treference\tratio\ttarget\tverdict")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.figure, r.measured, r.reference, r.ratio, r.target, r.verdict)
	}
	_ = tw.Flush()
}

// atLeast is a figure whose target is min times its reference or more.
func atLeast(figure, measured, reference string, ratio, min float64) row {
	return row{figure: figure, measured: measured, reference: reference,
		ratio: times(ratio), target: fmt.Sprintf(">= %.1fx", min), verdict: verdict(ratio >= min)}
}

// times renders a ratio.
func times(ratio float64) string { return fmt.Sprintf("%.2fx", ratio) }

func verdict(ok bool) string {
	if ok {
		return verdictOK
	}
	return verdictMiss
}

// latencies summarizes recorded call durations.
type latencies struct {
	n        int
	p50, p99 time.Duration
	max      time.Duration
}

// summarize sorts ds in place and reads nearest-rank percentiles.
func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	slices.Sort(ds)
	return latencies{n: len(ds), p50: percentile(ds, 0.50), p99: percentile(ds, 0.99), max: ds[len(ds)-1]}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
