package main

import (
	"testing"
	"time"

	"connectrpc.com/connect"
)

// A pgbench 15 report, trimmed.
const pgbenchOutput = `transaction type: <builtin: simple update>
scaling factor: 10
query mode: simple
number of clients: 8
number of threads: 2
duration: 10 s
number of transactions actually processed: 35617
latency average = 2.246 ms
initial connection time = 10.532 ms
tps = 3561.846113 (without initial connection time)
`

func TestParsePgbench(t *testing.T) {
	got, err := parsePgbench(pgbenchOutput)
	if err != nil {
		t.Fatal(err)
	}
	if got.tps != 3561.846113 || got.avgLatency != 2246*time.Microsecond {
		t.Errorf("got %+v", got)
	}
	if _, err := parsePgbench("pgbench: error: connection refused"); err == nil {
		t.Error("output without a tps line parsed")
	}
}

func TestSummarize(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond // reversed: summarize sorts
	}
	got := summarize(ds)
	if got.n != 100 || got.p50 != 50*time.Millisecond || got.p99 != 99*time.Millisecond || got.max != 100*time.Millisecond {
		t.Errorf("got %+v", got)
	}
	if one := summarize([]time.Duration{time.Second}); one.p50 != time.Second || one.p99 != time.Second {
		t.Errorf("one sample: got %+v", one)
	}
}

func TestRaceOutcome(t *testing.T) {
	won := raceOutcome{
		winners: []string{"o1"},
		codes:   map[connect.Code]int{connect.CodeFailedPrecondition: 63},
		settled: 48 * time.Millisecond,
	}
	if err := won.check(64); err != nil {
		t.Errorf("a clean race failed: %v", err)
	}
	if got, want := won.String(), "1 winner, 63 FailedPrecondition, settled in 48.0 ms"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	oversold := raceOutcome{winners: []string{"o1", "o2"}, codes: map[connect.Code]int{connect.CodeFailedPrecondition: 62}}
	if oversold.check(64) == nil {
		t.Error("two winners passed")
	}
	aborted := raceOutcome{winners: []string{"o1"}, codes: map[connect.Code]int{connect.CodeFailedPrecondition: 62, connect.CodeAborted: 1}}
	if aborted.check(64) == nil {
		t.Error("an Aborted loser passed")
	}
}

func TestSelectSuites(t *testing.T) {
	if got, err := selectSuites("all"); err != nil || len(got) != len(suites) {
		t.Errorf("all: %v, %v", got, err)
	}
	if got, err := selectSuites("orders"); err != nil || len(got) != 1 || got[0].name != "orders" {
		t.Errorf("orders: %v, %v", got, err)
	}
	if _, err := selectSuites("orders,nope"); err == nil {
		t.Error("an unknown suite was accepted")
	}
}
