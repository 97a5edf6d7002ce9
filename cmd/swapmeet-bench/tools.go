package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/swapmeet/swapmeet/internal/system"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// The references' C load generators, run as they come from Debian
// (`scripts/services.sh tools` installs them): pgbench, redis-benchmark,
// h2load and pg_recvlogical. C clients, so that a reference is not a Go
// program sharing the cores with the server and measuring itself too.

// runTool runs tool (Debian: pkg) and returns its stdout; it never prints its arguments.
func runTool(ctx context.Context, tool, pkg string, args ...string) (string, error) {
	path, err := exec.LookPath(tool)
	if err != nil {
		return "", fmt.Errorf("%s is needed for a reference (Debian: %s): %w", tool, pkg, err)
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", fmt.Errorf("%s %s: %w\n%s", tool, args[0], err, strings.TrimSpace(errOut.String()+out.String()))
	}
	return out.String(), nil
}

// float parses the first group of re in out.
func float(re *regexp.Regexp, out, what string) (float64, error) {
	m := re.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no %s in the output:\n%s", what, out)
	}
	return strconv.ParseFloat(m[1], 64)
}

// pgbenchResult is what a pgbench run reports.
type pgbenchResult struct {
	tps        float64 // without initial connection time
	avgLatency time.Duration
}

func (r pgbenchResult) String() string { return fmt.Sprintf("pgbench simple-update %.0f tps", r.tps) }

var (
	pgbenchTPS     = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	pgbenchLatency = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
)

// pgbenchInit loads pgbench's tables (scale 10) into a database of their own; returns its URL.
func pgbenchInit(ctx context.Context, e *env) string {
	server, name := e.Config.MigrationURL(), system.RandomName("swapmeet_bench_")
	check(system.AdminExec(ctx, server, "CREATE DATABASE "+name))
	e.OnClose(func() error {
		// Without FORCE (which would kill pgbench's autovacuum worker); again while a backend exits.
		var err error
		for range 5 {
			if err = system.AdminExec(context.Background(), server, "DROP DATABASE IF EXISTS "+name); err == nil {
				return nil
			}
			wait.Sleep(ctx, time.Second)
		}
		return err
	})
	dbURL := system.DatabaseURL(server, name)
	must(runTool(ctx, "pgbench", "postgresql-client", "-i", "-s", "10", "-q", dbURL))
	return dbURL
}

// pgbenchSimpleUpdate runs the simple-update script (PlaceOrder minus the API).
func pgbenchSimpleUpdate(ctx context.Context, url string, clients int, d time.Duration) pgbenchResult {
	progress("reference: pgbench simple-update, %d clients, %s", clients, d)
	return must(parsePgbench(must(runTool(ctx, "pgbench", "postgresql-client", "-n", "-b", "simple-update",
		"-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(2, clients)), "-T", strconv.Itoa(max(1, int((d+time.Second-1)/time.Second))), url))))
}

func parsePgbench(out string) (pgbenchResult, error) {
	tps, err := float(pgbenchTPS, out, "tps")
	if err != nil {
		return pgbenchResult{}, err
	}
	res := pgbenchResult{tps: tps}
	if v, err := float(pgbenchLatency, out, "latency"); err == nil {
		res.avgLatency = time.Duration(v * float64(time.Millisecond))
	}
	return res, nil
}

// redisBenchmarkGet GETs a cached listing's key with clients connections for about d.
func redisBenchmarkGet(ctx context.Context, redisURL, key string, clients int, d time.Duration) toolResult {
	u := must(url.Parse(redisURL))
	run := func(n int) toolResult {
		args := []string{"-h", u.Hostname(), "-p", u.Port(), "-c", strconv.Itoa(clients), "-n", strconv.Itoa(n), "--csv"}
		if db := strings.TrimPrefix(u.Path, "/"); db != "" {
			args = append(args, "--dbnum", db)
		}
		if p, ok := u.User.Password(); ok {
			args = append(args, "-a", p)
		}
		return must(parseRedisBenchmarkCSV(must(runTool(ctx, "redis-benchmark", "redis-tools", append(args, "GET", key)...))))
	}
	return run(max(20_000, int(run(20_000).rps*d.Seconds())))
}

// parseRedisBenchmarkCSV reads redis-benchmark 7's --csv output.
func parseRedisBenchmarkCSV(out string) (toolResult, error) {
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 || len(recs[0]) != len(recs[1]) {
		return toolResult{}, fmt.Errorf("unexpected redis-benchmark output:\n%s", out)
	}
	col := map[string]float64{}
	for i, h := range recs[0] {
		col[h], _ = strconv.ParseFloat(recs[1][i], 64)
	}
	if col["rps"] <= 0 {
		return toolResult{}, fmt.Errorf("no rps in redis-benchmark output:\n%s", out)
	}
	msec := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	return toolResult{rps: col["rps"], lat: latencies{p50: msec(col["p50_latency_ms"]), p99: msec(col["p99_latency_ms"])}}, nil
}

// toolResult is what a load generator measured.
type toolResult struct {
	rps float64
	lat latencies
}

func (r toolResult) String() string {
	return fmt.Sprintf("%.0f/s, p50 %s, p99 %s", r.rps, ms(r.lat.p50), ms(r.lat.p99))
}

// runH2load runs h2load over urls (GETs, or POSTs of body); any non-2xx fails the figure.
func runH2load(ctx context.Context, dir string, urls []string, body []byte, clients int, d time.Duration) toolResult {
	logFile, urlFile, bodyFile := filepath.Join(dir, "h2load.log"), filepath.Join(dir, "h2load.urls"), filepath.Join(dir, "h2load.body")
	args := []string{"-c", strconv.Itoa(clients), "-m", "1", "-t", "1", "-D", fmt.Sprintf("%dms", d.Milliseconds()),
		"--warm-up-time", fmt.Sprintf("%dms", warmupFor(d).Milliseconds()), "--log-file", logFile, "-i", urlFile}
	check(os.WriteFile(urlFile, []byte(strings.Join(urls, "\n")+"\n"), 0o644))
	if body != nil {
		check(os.WriteFile(bodyFile, body, 0o644))
		args = append(args, "-d", bodyFile, "-H", "content-type: application/json")
	}
	_ = os.Remove(logFile)
	rps := must(parseH2loadOutput(must(runTool(ctx, "h2load", "nghttp2-client", args...))))
	f := must(os.Open(logFile))
	defer f.Close()
	return toolResult{rps: rps, lat: must(parseH2loadLog(f, clients))}
}

var (
	h2loadFinished = regexp.MustCompile(`(?m)^finished in \S+, ([0-9.]+) req/s`)
	h2loadRequests = regexp.MustCompile(`(?m)^requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2loadStatus   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// parseH2loadOutput reads h2load's rate, and fails unless every answer was a 2xx.
func parseH2loadOutput(out string) (float64, error) {
	req, st := h2loadRequests.FindStringSubmatch(out), h2loadStatus.FindStringSubmatch(out)
	rps, err := float(h2loadFinished, out, "req/s")
	if err != nil || req == nil || st == nil {
		return 0, fmt.Errorf("unexpected h2load output:\n%s", out)
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	switch {
	case n(req[2])+n(req[3])+n(req[4]) > 0:
		return 0, fmt.Errorf("h2load: %s; %s", req[0], st[0])
	case n(st[2])+n(st[3])+n(st[4]) > 0:
		return 0, fmt.Errorf("h2load: answers other than 2xx: %s", st[0])
	case n(req[1]) == 0 || n(st[1]) == 0:
		return 0, fmt.Errorf("h2load: no request was answered: %s", req[0])
	}
	return rps, nil
}

// parseH2loadLog summarizes h2load's --log-file; one unanswered stream a connection goes.
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
		switch {
		case err1 != nil || err2 != nil:
			return latencies{}, fmt.Errorf("h2load log line %d: %q", n, sc.Text())
		case status >= 200 && status < 300:
			ds = append(ds, time.Duration(us)*time.Microsecond)
		case status == 0:
			unanswered++
		default:
			return latencies{}, fmt.Errorf("h2load log line %d: status %d", n, status)
		}
	}
	switch {
	case sc.Err() != nil:
		return latencies{}, fmt.Errorf("h2load log: %w", sc.Err())
	case unanswered > clients:
		return latencies{}, fmt.Errorf("h2load log: %d requests unanswered, more than the %d connections had in flight", unanswered, clients)
	case len(ds) == 0:
		return latencies{}, fmt.Errorf("h2load log: no answered request")
	}
	return summarize(ds), nil
}
