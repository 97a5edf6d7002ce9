// Command swapmeet-bench measures each performance target as a
// ratio against a reference that it measures in the same run, on the same
// machine. Absolute numbers drift on a shared machine; ratios drift less.
//
// Every suite builds its own private share of the local services (a fresh
// database, Mongo database and Redis prefix: an internal/sandbox), runs
// the API in process behind a real HTTP/2 server, or as a `swapmeet serve`
// process, and drives it through the generated Connect clients or, for the
// read figures, with h2load. Progress goes to stderr, the table to stdout.
//
// It exits 0 when every figure was measured, even if one misses its target:
// the table is the report. It exits 1 when something broke: an RPC failed,
// a correctness check failed (say, two buyers won one listing), or a
// service was unreachable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags that every suite may read.
type options struct {
	clients    int
	duration   time.Duration
	raceBuyers int
	withCDC    bool
	cpuProfile string
}

// suite measures one group of targets. Suites are independent: each sets
// up and tears down what it needs, so any subset can run.
type suite struct {
	name  string
	about string
	run   func(ctx context.Context, o options) ([]row, error)
}

var suites = []suite{
	{"orders", "PlaceOrder throughput and latency vs pgbench simple-update; N buyers race for one listing", runOrders},
	{"cdc", "CDC decode rate (null sink), real-sink rate vs raw FerretDB upserts; a swapmeet cdc process against the sink's raw upsert rate: freshness at half of it, the highest rate with p99 < 100 ms, one transaction of -cdc-catalogue changed listings (peak RSS, rate); WatchListing commit to delivery next to that freshness; fan-out of one change to -watch-subscribers streams of a swapmeet serve process (p99, RSS per stream)", runCDC},
	{"reads", "GetListing cache hits and warm SearchListings pages of a swapmeet serve process under h2load vs the Connect ceiling (Health/Check) and redis-benchmark GET; cache miss vs FerretDB find; cold SearchListings latency on a catalogue", runReads},
	{"rebuild", "projections rebuild of a listings catalogue vs raw insertMany, and readers never see a gap", runRebuild},
}

func main() {
	o, selected := parseFlags()
	os.Exit(run(o, selected))
}

// run runs the selected suites, prints the table, and returns the exit
// status: 1 if any suite failed, whatever the figures say.
func run(o options, selected []suite) int {
	ctx, stop := interruptible()
	defer stop()

	if o.cpuProfile != "" {
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			usageError("%v", err)
		}
		defer stopProfile()
	}

	figures := make([]figure, len(selected))
	for i, s := range selected {
		figures[i] = figure{s.name, func() ([]row, error) {
			progress("suite %s: %s", s.name, s.about)
			rows, err := s.run(ctx, o)
			if err != nil {
				progress("suite %s FAILED: %v", s.name, err)
			}
			return rows, err
		}}
	}
	rows, err := measureAll(ctx, figures)
	printTable(os.Stdout, rows)
	if err == nil {
		return 0
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "\nbenchmark interrupted:")
	} else {
		fmt.Fprintln(os.Stderr, "\nbenchmark FAILED (something broke; this is not about missed targets):")
	}
	fmt.Fprintln(os.Stderr, "  "+strings.ReplaceAll(err.Error(), "\n", "\n  "))
	return 1
}

// interruptible returns a context that the first SIGINT or SIGTERM cancels.
// The suites then stop, and their cleanups still drop the databases they
// created. A second signal kills the process at once.
func interruptible() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		signal.Stop(sigs) // the default action again, for the second signal
		progress("%s: stopping and cleaning up (again to quit at once)", sig)
		cancel(errors.New("interrupted"))
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(sigs)
		cancel(nil)
	}
}

// startCPUProfile profiles until the returned function is called; it is
// how to find out where the API spends a figure's time.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

func parseFlags() (options, []suite) {
	var o options
	suiteFlag := flag.String("suite", "all", "comma-separated suites to run, or all: "+suiteNames())
	flag.IntVar(&o.clients, "clients", 8, "concurrent clients in throughput figures (the reference uses as many)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each throughput figure and its reference run")
	flag.IntVar(&o.raceBuyers, "race-buyers", 64, "buyers that race for one listing")
	flag.BoolVar(&o.withCDC, "cdc", false, "run the CDC projector during the orders suite (it shares the CPU with the API and Postgres)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (client and API alike) to `file`")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `usage: swapmeet-bench [flags]

Measures each performance target against a reference measured in the same
run and prints a table of ratios. Needs the local services ('make up') and
SWAPMEET_* variables pointing at them ('scripts/services.sh env').

Exit status: 0 when every figure was measured (missed targets included),
1 on a correctness failure or an error, 2 on bad flags.

suites:
`)
		for _, s := range suites {
			fmt.Fprintf(flag.CommandLine.Output(), "  %-8s %s\n", s.name, s.about)
		}
		fmt.Fprintln(flag.CommandLine.Output(), "\nflags:")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		usageError("unexpected arguments: %s", strings.Join(flag.Args(), " "))
	}
	if o.clients < 1 || o.raceBuyers < 2 || o.duration < time.Second {
		usageError("need -clients >= 1, -race-buyers >= 2 and -duration >= 1s")
	}
	selected, err := selectSuites(*suiteFlag)
	if err != nil {
		usageError("%v", err)
	}
	return o, selected
}

func selectSuites(spec string) ([]suite, error) {
	if spec == "all" {
		return suites, nil
	}
	var out []suite
	for name := range strings.SplitSeq(spec, ",") {
		i := slices.IndexFunc(suites, func(s suite) bool { return s.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("unknown suite %q (have: %s)", name, suiteNames())
		}
		out = append(out, suites[i])
	}
	return out, nil
}

func suiteNames() string {
	names := make([]string, len(suites))
	for i, s := range suites {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

func usageError(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "swapmeet-bench: "+format+"\n\n", args...)
	flag.Usage()
	os.Exit(2)
}
