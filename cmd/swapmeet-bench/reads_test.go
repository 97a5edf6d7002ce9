package main

import (
	"testing"
	"time"
)

func TestParseRedisBenchmarkCSV(t *testing.T) {
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"GET swapmeet:listing:0193","31347.96","0.181","0.016","0.111","0.623","1.695","5.863"
`
	got, err := parseRedisBenchmarkCSV(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.rps != 31347.96 || got.p50 != 111*time.Microsecond || got.p99 != 1695*time.Microsecond {
		t.Errorf("got %+v", got)
	}
	if _, err := parseRedisBenchmarkCSV("Could not connect to Redis at 127.0.0.1:16379: Connection refused\n"); err == nil {
		t.Error("an error message parsed")
	}
}

func TestRebuildProgress(t *testing.T) {
	p := newRebuildProgress()
	for _, chunk := range []string{
		"rebuild: listings    0.0% 0/1000  0 rows/s  ETA ?\n",
		"rebuild: listings  100.0% 1000/1000  812 rows/s  done in 1.2",
		"31s\nrebuild: indexes built\n",
	} {
		if _, err := p.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	got := p.result()
	if got.loaded["listings"] != 1000 || got.loadTook["listings"] != 1231*time.Millisecond || got.indexed == 0 {
		t.Errorf("got %+v", got)
	}
}
