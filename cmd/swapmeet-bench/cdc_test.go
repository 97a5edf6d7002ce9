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
