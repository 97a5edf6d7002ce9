package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

func TestParsePgbench(t *testing.T) {
	got, err := parsePgbench("number of clients: 8\nlatency average = 2.246 ms\ntps = 3561.846113 (without initial connection time)\n")
	if err != nil || got.tps != 3561.846113 || got.avgLatency != 2246*time.Microsecond {
		t.Errorf("got %+v, %v", got, err)
	}
	if _, err := parsePgbench("pgbench: error: connection refused"); err == nil {
		t.Error("output without a tps line parsed")
	}
}

func TestParseRedisBenchmarkCSV(t *testing.T) {
	got, err := parseRedisBenchmarkCSV(`"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"GET swapmeet:listing:0193","31347.96","0.181","0.016","0.111","0.623","1.695","5.863"
`)
	if err != nil || got.rps != 31347.96 || got.lat.p50 != 111*time.Microsecond || got.lat.p99 != 1695*time.Microsecond {
		t.Errorf("got %+v, %v", got, err)
	}
	if _, err := parseRedisBenchmarkCSV("Could not connect to Redis at 127.0.0.1:16379: Connection refused\n"); err == nil {
		t.Error("an error message parsed")
	}
}

// The end of h2load 1.52's output (Debian's nghttp2-client).
const h2loadOK = `finished in 3.00s, 14883.50 req/s, 479.73KB/s
requests: 29767 total, 29767 started, 29767 done, 29767 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 29767 2xx, 0 3xx, 0 4xx, 0 5xx
`

func TestParseH2loadOutput(t *testing.T) {
	if got, err := parseH2loadOutput(h2loadOK); err != nil || got != 14883.50 {
		t.Errorf("got %v, %v", got, err)
	}
	for want, out := range map[string]string{
		"7930 failed": strings.NewReplacer("29767 succeeded, 0 failed", "21837 succeeded, 7930 failed").Replace(h2loadOK),
		// 404s that h2load counted as succeeded.
		"other than 2xx": strings.Replace(h2loadOK, "29767 2xx, 0 3xx, 0 4xx", "29000 2xx, 0 3xx, 767 4xx", 1),
		// Nothing listening: h2load exits 0 all the same.
		"no request":        strings.NewReplacer("29767", "0", "14883.50", "0.00").Replace(h2loadOK),
		"unexpected h2load": "h2load: unrecognized option '--bogus'\n",
	} {
		if _, err := parseH2loadOutput(out); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error with %q, got %v", want, err)
		}
	}
}

func TestParseH2loadLog(t *testing.T) {
	var log strings.Builder
	log.WriteString("1795818157359825\t0\t991\n1795818157360045\t0\t935\n") // unanswered at a phase boundary
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&log, "%d\t200\t%d\n", 1795818150556450+i, i*10)
	}
	got, err := parseH2loadLog(strings.NewReader(log.String()), 4)
	// Nearest rank: the 100th and the 198th of 200.
	if err != nil || got.n != 200 || got.p50 != time.Millisecond || got.p99 != 1980*time.Microsecond || got.max != 2*time.Millisecond {
		t.Errorf("got %+v, %v", got, err)
	}
	if _, err := parseH2loadLog(strings.NewReader(log.String()), 1); err == nil {
		t.Error("two unanswered streams on one connection let go")
	}
	for _, bad := range []string{"1\t404\t433\n", "1\t500\t199\n", "1\t-1\t199\n", "1 200 199\n", ""} {
		if _, err := parseH2loadLog(strings.NewReader("1\t0\t380\n"+bad), 4); err == nil {
			t.Errorf("%q let go", bad)
		}
	}
}

func TestRebuildProgress(t *testing.T) {
	p := &rebuildProgress{start: time.Now()}
	for _, chunk := range []string{
		"rebuild: listings    0.0% 0/1000  0 rows/s  ETA ?\n",
		"rebuild: listings  100.0% 1000/1000  812 rows/s  done in 1.2",
		"31s\nrebuild: indexes built\n",
	} {
		if _, err := p.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if p.run.loaded != 1000 || p.run.loadTook != 1231*time.Millisecond || p.run.indexed == 0 {
		t.Errorf("got %+v", p.run)
	}
}

func TestSummarize(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond // reversed: summarize sorts
	}
	if got := summarize(ds); got.n != 100 || got.p50 != 50*time.Millisecond || got.p99 != 99*time.Millisecond || got.max != 100*time.Millisecond {
		t.Errorf("got %+v", got)
	}
	rss, peak, err := parseProcMemory("Name:\tswapmeet\nVmHWM:\t  262144 kB\nVmRSS:\t   28672 kB\n")
	if err != nil || rss != 28<<20 || peak != 256<<20 {
		t.Errorf("got rss %d, peak %d, %v", rss, peak, err)
	}
}

func TestRaceOutcome(t *testing.T) {
	won := raceOutcome{winners: []string{"o1"}, codes: map[connect.Code]int{connect.CodeFailedPrecondition: 63}, settled: 48 * time.Millisecond}
	if err := won.check(64); err != nil {
		t.Errorf("a clean race failed: %v", err)
	}
	if got, want := won.String(), "1 winner, 63 FailedPrecondition, settled in 48.0 ms"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	oversold := raceOutcome{winners: []string{"o1", "o2"}, codes: map[connect.Code]int{connect.CodeFailedPrecondition: 62}}
	aborted := raceOutcome{winners: []string{"o1"}, codes: map[connect.Code]int{connect.CodeFailedPrecondition: 62, connect.CodeAborted: 1}}
	if oversold.check(64) == nil || aborted.check(64) == nil {
		t.Error("two winners, or an Aborted loser, passed")
	}
}

func TestNextSearchRate(t *testing.T) {
	step := func(rate float64, p99 time.Duration) freshStep {
		return freshStep{rate: rate, achieved: rate, fresh: latencies{n: 100, p99: p99}}
	}
	held := func(rate float64) freshStep { return step(rate, 50*time.Millisecond) }
	missed := func(rate float64) freshStep { return step(rate, 300*time.Millisecond) }
	bound := held(500)
	bound.achieved = 400 // the writer could not issue more
	for _, c := range []struct {
		steps []freshStep
		want  float64 // 0: the search ends
	}{
		{[]freshStep{held(500)}, 750},              // half again
		{[]freshStep{missed(500)}, 250},            // half
		{[]freshStep{held(500), missed(750)}, 612}, // the geometric mean
		{[]freshStep{held(500), missed(750), held(700)}, 0},
		{[]freshStep{bound}, 0},      // the writer's limit
		{[]freshStep{missed(30)}, 0}, // below 2% of the raw rate
	} {
		next, ok := nextSearchRate(c.steps, 1000)
		if ok != (c.want > 0) || (ok && (next < c.want-0.5 || next > c.want+0.5)) {
			t.Errorf("after %v: %v, %v; want %v", c.steps, next, ok, c.want)
		}
	}
}

// The search suite holds to 50 ms exactly the landing page and the sorts
// with at most one equality filter; every other shape to 100 ms.
func TestColdShapesTargets(t *testing.T) {
	for _, sh := range coldShapes([]string{"0190b0c4-0000-7000-8000-000000000001"}) {
		r := sh.req(0)
		equalities := 0
		for _, set := range []bool{r.GetCategory() != "", r.GetSellerId() != "", r.GetCondition() != 0} {
			if set {
				equalities++
			}
		}
		strict := r.GetQuery() == "" && r.GetMinPrice() == nil && r.GetMaxPrice() == nil && len(r.GetAttributes()) == 0 && equalities <= 1
		if sh.strict != strict {
			t.Errorf("%s: held to the 50 ms target: %v; its filters say %v", sh.name, sh.strict, strict)
		}
	}
}

func TestPlaceOrderScripts(t *testing.T) {
	with, without, err := placeOrderScripts()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(without, emitLinePrefix) || !strings.Contains(with, emitLinePrefix) {
		t.Error("the annotation line is not in the annotated script alone")
	}
	if removed := len(with) - len(without); removed != len("SELECT pg_logical_emit_message(true, 'swapmeet.audit.v1', :note::text);\n") {
		t.Errorf("the scripts differ by %d bytes, not by the annotation line", removed)
	}
	// The commit position is read as the API reads it.
	b, err := os.ReadFile("../../db/queries/projections.sql")
	if err != nil {
		t.Fatal(err)
	}
	_, query, _ := strings.Cut(string(b), "-- name: CurrentPosition :one\n")
	query, _, _ = strings.Cut(query[strings.Index(query, "SELECT"):], ";")
	if !strings.Contains(query, "pg_current_wal_insert_lsn()") || !strings.Contains(placeOrderScript, query+";\n\\endpipeline") {
		t.Errorf("placeorder.pgbench does not read the commit position with CurrentPosition's query:\n%s", query)
	}
}
