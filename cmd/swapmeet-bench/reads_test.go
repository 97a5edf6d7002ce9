package main

import (
	"fmt"
	"strings"
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

// Output of h2load 1.52 (Debian's nghttp2-client) against a Go h2c
// server, with -c 4 -m 1 -D 2 --warm-up-time 1.
const h2loadOK = `starting benchmark...
spawning thread #0: 4 total client(s). Timing-based test with 1s of warm-up time and 2s of main duration for measurements.
Warm-up started for thread #0.
progress: 25% of clients started
progress: 50% of clients started
progress: 75% of clients started
progress: 100% of clients started
Application protocol: h2c
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 3.00s, 14883.50 req/s, 479.73KB/s
requests: 29767 total, 29767 started, 29767 done, 29767 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 29767 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 959.47KB (982495) total, 161.59KB (165472) headers (space savings 95.82%), 443.16KB (453794) data
                     min         max         mean         sd        +/- sd
time for request:       41us     12.72ms       194us       278us    97.97%
time for connect:        0us         0us         0us         0us     0.00%
time to 1st byte:        0us         0us         0us         0us     0.00%
req/s           :    3707.78     3738.75     3721.16       15.32    75.00%
`

func TestParseH2loadOutput(t *testing.T) {
	got, err := parseH2loadOutput(h2loadOK)
	if err != nil {
		t.Fatal(err)
	}
	if got.rps != 14883.50 || got.done != 29767 || got.status2xx != 29767 {
		t.Errorf("got %+v", got)
	}

	// -i over three paths: 200, 404 and 500 in turn. h2load counts the
	// 404s and 500s as failed; either way, it is not throughput.
	// (The end of its output.)
	mixed := `Application protocol: h2c

finished in 2.00s, 11896.00 req/s, 398.92KB/s
requests: 11896 total, 11896 started, 11896 done, 3966 succeeded, 7930 failed, 0 errored, 0 timeout
status codes: 3964 2xx, 0 3xx, 3965 4xx, 3965 5xx
traffic: 398.92KB (408496) total, 116.56KB (119359) headers (space savings 95.93%), 290.25KB (297215) data
`
	if _, err := parseH2loadOutput(mixed); err == nil || !strings.Contains(err.Error(), "7930 failed") {
		t.Errorf("404s and 500s: %v", err)
	}
	// 404s alone, were h2load to count them as succeeded.
	notFound := strings.NewReplacer("3966 succeeded, 7930 failed", "11896 succeeded, 0 failed").Replace(mixed)
	if _, err := parseH2loadOutput(notFound); err == nil || !strings.Contains(err.Error(), "other than 2xx") {
		t.Errorf("404s and 500s counted as succeeded: %v", err)
	}

	// Nothing listening: h2load exits 0 all the same.
	refused := `starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 1s of warm-up time and 1s of main duration for measurements.
Warm-up started for thread #0.
progress: 50% of clients started
progress: 100% of clients started
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.01s, 0.00 req/s, 0B/s
requests: 0 total, 0 started, 0 done, 0 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 0B (0) total, 0B (0) headers (space savings 0.00%), 0B (0) data
`
	if _, err := parseH2loadOutput(refused); err == nil || !strings.Contains(err.Error(), "no request") {
		t.Errorf("no server: %v", err)
	}
	if _, err := parseH2loadOutput("h2load: unrecognized option '--bogus'\n"); err == nil {
		t.Error("an error message parsed")
	}
}

func TestParseH2loadLog(t *testing.T) {
	// Lines of h2load's --log-file (start µs, status, duration µs).
	var log strings.Builder
	log.WriteString("1795818157359825\t0\t991\n1795818157360045\t0\t935\n")
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&log, "%d\t200\t%d\n", 1795818150556450+i, i*10)
	}
	got, err := parseH2loadLog(strings.NewReader(log.String()), 4)
	if err != nil {
		t.Fatal(err)
	}
	// Nearest rank: the 100th and the 198th of 200.
	if got.n != 200 || got.p50 != 1000*time.Microsecond || got.p99 != 1980*time.Microsecond || got.max != 2*time.Millisecond {
		t.Errorf("got %+v", got)
	}
	if _, err := parseH2loadLog(strings.NewReader(log.String()), 1); err == nil {
		t.Error("two unanswered streams on one connection let go")
	}
	for _, bad := range []string{
		"1795818157360772\t404\t433\n",
		"1795818157360997\t500\t199\n",
		"1795818157360997\t-1\t199\n",
		"1795818157360997 200 199\n",
	} {
		if _, err := parseH2loadLog(strings.NewReader("1795818157360800\t200\t380\n"+bad), 4); err == nil {
			t.Errorf("%q let go", bad)
		}
	}
	if _, err := parseH2loadLog(strings.NewReader("1795818157359825\t0\t991\n"), 4); err == nil {
		t.Error("a log of no answered request let go")
	}
}
