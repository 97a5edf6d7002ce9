// Command swapmeet-bench measures each performance target as a ratio
// against a reference measured in the same run on the same machine:
// absolute numbers drift on a shared machine, ratios drift less.
//
// Each suite provisions its own share of the local services (a
// system.Scratch: fresh database, Mongo database and Redis prefix) and
// runs the API in this process or as `swapmeet serve` and `swapmeet cdc`
// processes on it (harness.go); the references are C load generators
// (tools.go). Progress goes to stderr, the table to stdout. It exits 0
// when every figure was measured, missed targets included (the table is
// the report), 1 when something broke (an RPC failed, a correctness check
// failed, a service was unreachable), 2 on bad flags.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// options are the command-line flags.
type options struct {
	clients, raceBuyers             int
	duration                        time.Duration
	withCDC                         bool
	searchListings, rebuildListings int
	cdcFigures                      string
	cdcCatalogue, cdcRSSLimitMiB    int
	cdcApplyTimeout, cdcSearch      time.Duration
	watchListings, watchSubscribers int
	searchCatalogue, searchRuns     int
	searchLoadFor                   time.Duration
}

// swapmeetBin is -cdc-bin: a prebuilt swapmeet for the serve and cdc processes.
var swapmeetBin string

// suite measures one group of targets, on its own: any subset can run.
type suite struct {
	name, about string
	run         func(ctx context.Context, o options) ([]row, error)
}

var suites = []suite{
	{"orders", "PlaceOrder throughput and latency vs pgbench simple-update; N buyers race for one listing; PlaceOrder's transaction in pgbench with the audit annotation vs without, and its WAL; MarkOrderPaid's WAL with REPLICA IDENTITY FULL vs DEFAULT", runOrders},
	{"cdc", "CDC decode rate (null sink) vs pg_recvlogical, real-sink rate vs raw FerretDB upserts; a swapmeet cdc process against the raw write rate of the same documents to the read store, the search store and the history: freshness at half of it, the highest rate with p99 < 100 ms, one transaction of -cdc-catalogue changed listings (peak RSS, rate); WatchListing commit to delivery next to that freshness; fan-out of one change to -watch-subscribers streams of a swapmeet serve process (p99, RSS per stream)", runCDC},
	{"reads", "GetListing cache hits and warm SearchListings pages of a swapmeet serve process under h2load vs the Connect ceiling (Health/Check) and redis-benchmark GET; cache miss vs FerretDB find, on a catalogue", runReads},
	{"rebuild", "projections rebuild of a listings catalogue vs raw insertMany, and readers never see a gap", runRebuild},
	{"search", "SearchListings on a catalogue in the search store: each shape cold (a write's token before each run) vs its SQL's EXPLAIN ANALYZE execution time; the landing page under h2load while listings change vs the Connect ceiling; CDC freshness with and without the search write", runSearch},
}

func main() {
	var o options
	suiteFlag := flag.String("suite", "all", "comma-separated suites to run, or all: orders, cdc, reads, rebuild, search")
	flag.IntVar(&o.clients, "clients", 8, "concurrent clients in throughput figures (the reference uses as many)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each throughput figure and its reference run")
	flag.IntVar(&o.raceBuyers, "race-buyers", 64, "buyers that race for one listing")
	flag.BoolVar(&o.withCDC, "cdc", false, "run the CDC projector during the orders suite (it shares the CPU with the API and Postgres)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (client and API alike) to `file`")
	flag.IntVar(&o.searchListings, "search-listings", 100_000, "listings in the reads suite's catalogue (SearchListings and the cache-miss path)")
	flag.IntVar(&o.rebuildListings, "rebuild-listings", 250_000, "listings the rebuild suite loads (the target is set for 1000000: about 7 min here)")
	flag.StringVar(&o.cdcFigures, "cdc-figures", "all", "the cdc suite's figure groups to run, comma-separated: decode, sink, vs-sink, fan-out, or all")
	flag.StringVar(&swapmeetBin, "cdc-bin", "", "a prebuilt swapmeet binary for the cdc and serve processes (default: go build ./cmd/swapmeet into a temporary directory)")
	flag.IntVar(&o.cdcCatalogue, "cdc-catalogue", 1_000_000, "listings in the catalogue of the CDC figures against the sink; the big-transaction figure updates all of them in one transaction (the target size: 1000000)")
	flag.DurationVar(&o.cdcApplyTimeout, "cdc-apply-timeout", 0, "how long to wait for the CDC to apply the big transaction (0: three times what the raw upsert rate needs, within 5m..1h)")
	flag.IntVar(&o.cdcRSSLimitMiB, "cdc-rss-limit", 2048, "stop the CDC process when its RSS passes this many MiB while it applies the big transaction (protects a shared machine)")
	flag.DurationVar(&o.cdcSearch, "cdc-search", time.Minute, "time budget of the search for the highest write rate with p99 freshness under 100 ms")
	flag.IntVar(&o.watchListings, "watch-listings", 1000, "listings of the freshness writes that a WatchListing stream follows each, for the commit-to-delivery figure (0: none)")
	flag.IntVar(&o.watchSubscribers, "watch-subscribers", 10_000, "concurrent WatchListing streams on one listing in the fan-out figure (cdc suite), against a swapmeet serve process; streams go 100 to a connection")
	flag.IntVar(&o.searchCatalogue, "search-catalogue", 1_000_000, "listings in the search suite's catalogue (the targets are set for 1000000)")
	flag.IntVar(&o.searchRuns, "search-runs", 200, "cold runs of each shape in the search suite, each after a write")
	flag.DurationVar(&o.searchLoadFor, "search-load-for", 20*time.Second, "how long h2load drives the landing page in the search suite")
	flag.Usage = func() {
		w := flag.CommandLine.Output()
		fmt.Fprint(w, "usage: swapmeet-bench [flags]\n\nMeasures each performance target against a reference measured in the same\n"+
			"run and prints a table of ratios. Needs the local services ('make up') and\nSWAPMEET_* variables pointing at them "+
			"('scripts/services.sh env').\n\nExit status: 0 when every figure was measured (missed targets included),\n"+
			"1 on a correctness failure or an error, 2 on bad flags.\n\nsuites:\n")
		for _, s := range suites {
			fmt.Fprintf(w, "  %-8s %s\n", s.name, s.about)
		}
		fmt.Fprintln(w, "\nflags:")
		flag.PrintDefaults()
	}
	flag.Parse()
	selected, err := selectSuites(*suiteFlag)
	switch {
	case flag.NArg() > 0:
		usageError("unexpected arguments: %s", strings.Join(flag.Args(), " "))
	case o.clients < 1 || o.raceBuyers < 2 || o.duration < time.Second:
		usageError("need -clients >= 1, -race-buyers >= 2 and -duration >= 1s")
	case err != nil:
		usageError("%v", err)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			usageError("%v", err)
		}
	}
	code := run(o, selected)
	pprof.StopCPUProfile() // does nothing unless profiling
	os.Exit(code)
}

// run runs the suites and prints the table; a first SIGINT stops them, a second kills.
func run(o options, selected []suite) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	finished := make(chan struct{})
	defer stop()
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			progress("stopping and cleaning up (again to quit at once)")
			stop() // the default action again, for the second signal
		case <-finished:
		}
	}()
	figures := make([]figure, len(selected))
	for i, s := range selected {
		figures[i] = figure{s.name, func() ([]row, error) {
			progress("suite %s: %s", s.name, s.about)
			return s.run(ctx, o)
		}}
	}
	rows, err := measureAll(ctx, figures)
	printTable(os.Stdout, rows)
	if err == nil {
		return 0
	}
	what := "FAILED (something broke; this is not about missed targets)"
	if ctx.Err() != nil {
		what = "interrupted"
	}
	fmt.Fprintf(os.Stderr, "\nbenchmark %s:\n  %s\n", what, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	return 1
}

// selectSuites returns the suites spec names (comma-separated, or all).
func selectSuites(spec string) ([]suite, error) {
	if spec == "all" {
		return suites, nil
	}
	var out []suite
	for name := range strings.SplitSeq(spec, ",") {
		i := slices.IndexFunc(suites, func(s suite) bool { return s.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("unknown suite %q (have: orders, cdc, reads, rebuild, search)", name)
		}
		out = append(out, suites[i])
	}
	return out, nil
}

func usageError(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "swapmeet-bench: "+format+"\n\n", args...)
	flag.Usage()
	os.Exit(2)
}

// Verdicts. A missed target is a finding; a failed check is a bug.
const (
	verdictOK, verdictMiss, verdictFail = "ok", "MISS", "FAIL"
	verdictNotMeasured                  = "not measured" // the run ended before the figure could be read
	verdictNone                         = "-"            // a figure with no target
)

// row is one line of the final table.
type row struct{ figure, measured, reference, ratio, target, verdict string }

// info is a row without a target.
func info(figure, measured, reference, ratio, target string) row {
	return row{figure, measured, reference, ratio, target, verdictNone}
}

// atLeast is a figure whose target is min times its reference or more.
func atLeast(figure, measured, reference string, ratio, min float64) row {
	return row{figure, measured, reference, times(ratio), fmt.Sprintf(">= %.1fx", min), verdict(ratio >= min)}
}

func verdict(ok bool) string { return map[bool]string{true: verdictOK, false: verdictMiss}[ok] }

// figure is a group of rows measured together.
type figure struct {
	name string
	run  func() ([]row, error)
}

// measureAll runs the figures in turn; what one could not measure gets a broken row.
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
			name := f.name
			if len(got) > 0 {
				name += ": the rest"
			}
			if len(got) == 0 || got[len(got)-1].verdict != verdictFail {
				got = append(got, row{figure: name, measured: "broken: see below", verdict: verdictFail})
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

// latencies summarizes call durations.
type latencies struct {
	n             int
	p50, p99, max time.Duration
}

// summarize sorts ds in place and reads nearest-rank percentiles.
func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	slices.Sort(ds)
	at := func(p float64) time.Duration { return ds[max(int(math.Ceil(p*float64(len(ds))))-1, 0)] }
	return latencies{n: len(ds), p50: at(0.50), p99: at(0.99), max: ds[len(ds)-1]}
}

// median of f over xs: the middle one, or the lower of the two middle ones.
func median[T any, V cmp.Ordered](xs []T, f func(T) V) V {
	vs := make([]V, len(xs))
	for i, x := range xs {
		vs[i] = f(x)
	}
	slices.Sort(vs)
	return vs[(len(vs)-1)/2]
}

func times(ratio float64) string { return fmt.Sprintf("%.2fx", ratio) }
func ms(d time.Duration) string  { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func mib(b int64) string         { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// human renders a rate with a k suffix past ten thousand.
func human(v float64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.0fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

// sizeLabel renders a count as 20k or 1M.
func sizeLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return fmt.Sprintf("%gM", float64(n)/1e6)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func plural(n int, one, many string) string {
	return fmt.Sprintf("%d %s", n, map[bool]string{true: one, false: many}[n == 1])
}
