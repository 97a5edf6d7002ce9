package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// h2load is nghttp2's HTTP/2 load generator, a C client like the
// references (redis-benchmark, pgbench): the read figures measure the
// API with it, so that the client is not a Go program sharing the
// machine's cores with the server and measuring itself too.

// h2loadRun is one h2load run: clients connections of one stream each,
// for a warm-up and then d, over h2c (plain HTTP/2 with prior knowledge,
// which http:// URLs get).
type h2loadRun struct {
	urls    []string // one: requested over and over; more: each client cycles over them in order
	body    []byte   // if set, every request is a POST of it as application/json
	clients int
	d       time.Duration
}

// h2loadResult is what one run measured: the rate h2load reports, and
// the latencies computed from its per-request log.
type h2loadResult struct {
	rps float64
	lat latencies
}

// String reads like "31347/s, p50 0.4 ms, p99 1.7 ms".
func (r h2loadResult) String() string {
	return fmt.Sprintf("%.0f/s, p50 %s, p99 %s", r.rps, ms(r.lat.p50), ms(r.lat.p99))
}

// runH2load runs r with its files in dir. A run in which any request
// failed or got a status other than 2xx is an error: a 404 is no
// throughput.
func runH2load(ctx context.Context, dir string, r h2loadRun) (h2loadResult, error) {
	if len(r.urls) == 0 {
		return h2loadResult{}, fmt.Errorf("h2load: no URL")
	}
	logFile := filepath.Join(dir, "h2load.log")
	args := []string{
		"-c", strconv.Itoa(r.clients), "-m", "1", "-t", "1",
		"-D", strconv.FormatInt(r.d.Milliseconds(), 10) + "ms",
		"--warm-up-time", strconv.FormatInt(warmupFor(r.d).Milliseconds(), 10) + "ms",
		"--log-file", logFile,
	}
	if r.body != nil {
		bodyFile := filepath.Join(dir, "h2load.body")
		if err := os.WriteFile(bodyFile, r.body, 0o644); err != nil {
			return h2loadResult{}, err
		}
		args = append(args, "-d", bodyFile, "-H", "content-type: application/json")
	}
	if len(r.urls) == 1 {
		args = append(args, r.urls[0])
	} else {
		urlFile := filepath.Join(dir, "h2load.urls")
		if err := os.WriteFile(urlFile, []byte(strings.Join(r.urls, "\n")+"\n"), 0o644); err != nil {
			return h2loadResult{}, err
		}
		args = append(args, "-i", urlFile)
	}
	_ = os.Remove(logFile)
	out, err := runTool(ctx, "h2load", "nghttp2-client", args...)
	if err != nil {
		return h2loadResult{}, err
	}
	sum, err := parseH2loadOutput(out)
	if err != nil {
		return h2loadResult{}, err
	}
	f, err := os.Open(logFile)
	if err != nil {
		return h2loadResult{}, fmt.Errorf("h2load's log: %w", err)
	}
	defer f.Close()
	lat, err := parseH2loadLog(f, r.clients)
	if err != nil {
		return h2loadResult{}, err
	}
	return h2loadResult{rps: sum.rps, lat: lat}, nil
}

// h2loadSummary is what h2load prints at the end of a run.
type h2loadSummary struct {
	rps                                        float64
	done, succeeded, failed, errored, timeout  int
	status2xx, status3xx, status4xx, status5xx int
}

var (
	h2loadFinishedRE = regexp.MustCompile(`(?m)^finished in \S+, ([0-9.]+) req/s`)
	h2loadRequestsRE = regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2loadStatusRE   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// parseH2loadOutput reads the summary of h2load 1.52's output:
//
//	finished in 3.00s, 14883.50 req/s, 479.73KB/s
//	requests: 29767 total, 29767 started, 29767 done, 29767 succeeded, 0 failed, 0 errored, 0 timeout
//	status codes: 29767 2xx, 0 3xx, 0 4xx, 0 5xx
//
// With a warm-up, req/s is over the main duration alone, as are the
// counts. It fails unless every request was answered with a 2xx.
func parseH2loadOutput(out string) (h2loadSummary, error) {
	fin, req, st := h2loadFinishedRE.FindStringSubmatch(out), h2loadRequestsRE.FindStringSubmatch(out), h2loadStatusRE.FindStringSubmatch(out)
	if fin == nil || req == nil || st == nil {
		return h2loadSummary{}, fmt.Errorf("unexpected h2load output:\n%s", out)
	}
	var s h2loadSummary
	var err error
	if s.rps, err = strconv.ParseFloat(fin[1], 64); err != nil {
		return h2loadSummary{}, fmt.Errorf("h2load req/s %q: %w", fin[1], err)
	}
	for i, dst := range []*int{&s.done, &s.succeeded, &s.failed, &s.errored, &s.timeout} {
		*dst, _ = strconv.Atoi(req[3+i])
	}
	for i, dst := range []*int{&s.status2xx, &s.status3xx, &s.status4xx, &s.status5xx} {
		*dst, _ = strconv.Atoi(st[1+i])
	}
	switch {
	case s.failed > 0 || s.errored > 0 || s.timeout > 0:
		return s, fmt.Errorf("h2load: %s; %s", strings.TrimSpace(req[0]), strings.TrimSpace(st[0]))
	case s.status3xx > 0 || s.status4xx > 0 || s.status5xx > 0:
		return s, fmt.Errorf("h2load: answers other than 2xx: %s", strings.TrimSpace(st[0]))
	case s.done == 0 || s.status2xx == 0:
		return s, fmt.Errorf("h2load: no request was answered: %s", strings.TrimSpace(req[0]))
	}
	return s, nil
}

// parseH2loadLog reads h2load's --log-file (tab-separated: start time in
// µs since the epoch, HTTP status, µs until the end of the response; one
// line per request of the main duration) and summarizes the latencies of
// the 2xx answers. Status 0 marks a stream for which h2load recorded no
// status, which a stream that spans a phase boundary may be: a few are
// let go, no more than one per connection. Any other status, or -1 (a
// failed stream), is an error.
func parseH2loadLog(r io.Reader, clients int) (latencies, error) {
	var ds []time.Duration
	unanswered := 0
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 3 {
			return latencies{}, fmt.Errorf("h2load log line %d: %q", n, sc.Text())
		}
		status, err1 := strconv.Atoi(f[1])
		us, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return latencies{}, fmt.Errorf("h2load log line %d: %q", n, sc.Text())
		}
		switch {
		case status >= 200 && status < 300:
			ds = append(ds, time.Duration(us)*time.Microsecond)
		case status == 0:
			unanswered++
		default:
			return latencies{}, fmt.Errorf("h2load log line %d: status %d", n, status)
		}
	}
	if err := sc.Err(); err != nil {
		return latencies{}, fmt.Errorf("h2load log: %w", err)
	}
	if unanswered > clients {
		return latencies{}, fmt.Errorf("h2load log: %d requests unanswered, more than the %d connections had in flight", unanswered, clients)
	}
	if len(ds) == 0 {
		return latencies{}, fmt.Errorf("h2load log: no answered request")
	}
	return summarize(ds), nil
}
