package main

import (
	"testing"
	"time"
)

func TestCDCSuiteRegistered(t *testing.T) {
	got, err := selectSuites("cdc")
	if err != nil || len(got) != 1 || got[0].name != "cdc" {
		t.Fatalf("cdc: %v, %v", got, err)
	}
}

func TestRates(t *testing.T) {
	if got := perSecond(300, 2*time.Second); got != 150 {
		t.Errorf("perSecond = %v", got)
	}
	if got := perSecond(1, 0); got != 0 {
		t.Errorf("perSecond over no time = %v", got)
	}
	for v, want := range map[float64]string{9_999: "9999", 10_000: "10k", 156_080: "156k"} {
		if got := human(v); got != want {
			t.Errorf("human(%v) = %q, want %q", v, got, want)
		}
	}
	r := freshResult{writes: 100, lastSeen: 2 * time.Second}
	if got := r.keptUp(); got != 50 {
		t.Errorf("keptUp = %v", got)
	}
}

func TestParseProcMemory(t *testing.T) {
	status := "Name:\tswapmeet\nVmPeak:\t 1300000 kB\nVmHWM:\t  262144 kB\nVmRSS:\t   28672 kB\nThreads:\t9\n"
	rss, peak, err := parseProcMemory(status)
	if err != nil || rss != 28<<20 || peak != 256<<20 {
		t.Errorf("got rss %d, peak %d, %v", rss, peak, err)
	}
	if _, _, err := parseProcMemory("Name:\tswapmeet\nVmRSS:\t1 kB\n"); err == nil {
		t.Error("a status without VmHWM parsed")
	}
}

func TestNextSearchRate(t *testing.T) {
	held := func(rate float64) freshStep {
		return freshStep{rate: rate, achieved: rate, fresh: latencies{n: 100, p99: 50 * time.Millisecond}}
	}
	missed := func(rate float64) freshStep {
		return freshStep{rate: rate, achieved: rate, fresh: latencies{n: 100, p99: 300 * time.Millisecond}}
	}
	near := func(got, want float64) bool { return got > want-0.5 && got < want+0.5 }

	if next, ok := nextSearchRate([]freshStep{held(500)}, 1000); !ok || !near(next, 750) {
		t.Errorf("after a rate that held: %v, %v; want 750 (half again)", next, ok)
	}
	if next, ok := nextSearchRate([]freshStep{missed(500)}, 1000); !ok || !near(next, 250) {
		t.Errorf("after a rate that missed: %v, %v; want 250 (half)", next, ok)
	}
	if next, ok := nextSearchRate([]freshStep{held(500), missed(750)}, 1000); !ok || !near(next, 612) {
		t.Errorf("between 500 and 750: %v, %v; want 612 (geometric mean)", next, ok)
	}
	if _, ok := nextSearchRate([]freshStep{held(500), missed(750), held(700)}, 1000); ok {
		t.Error("the search went on with 700 held and 750 missed")
	}
	bound := held(500)
	bound.achieved = 400 // the writer could not issue more
	if _, ok := nextSearchRate([]freshStep{bound}, 1000); ok {
		t.Error("the search went on past the writer's limit")
	}
	if _, ok := nextSearchRate([]freshStep{missed(30)}, 1000); ok {
		t.Error("the search went on below 2% of the raw rate")
	}
}

func TestSizeLabel(t *testing.T) {
	for n, want := range map[int]string{1_000_000: "1M", 1_500_000: "1.5M", 100_000: "100k", 20_000: "20k", 1234: "1234"} {
		if got := sizeLabel(n); got != want {
			t.Errorf("sizeLabel(%d) = %q, want %q", n, got, want)
		}
	}
}
