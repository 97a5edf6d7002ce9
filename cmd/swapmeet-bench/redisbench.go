package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// redisResult is what one redis-benchmark run reports.
type redisResult struct {
	rps      float64
	p50, p99 time.Duration
}

// redisBenchmarkGet runs redis-benchmark's GET of one existing key, with
// clients connections, for about d: a short calibration run sizes the real
// one. GET of a real cached listing (rather than `-t get -d <size>`, whose
// key nothing has set, so it answers nil) makes the reply exactly what a
// cache hit reads.
func redisBenchmarkGet(ctx context.Context, redisURL, key string, clients int, d time.Duration) (redisResult, error) {
	cal, err := runRedisBenchmark(ctx, redisURL, key, clients, 20_000)
	if err != nil {
		return redisResult{}, err
	}
	n := max(20_000, int(cal.rps*d.Seconds()))
	return runRedisBenchmark(ctx, redisURL, key, clients, n)
}

func runRedisBenchmark(ctx context.Context, redisURL, key string, clients, n int) (redisResult, error) {
	u, err := url.Parse(redisURL)
	if err != nil {
		return redisResult{}, fmt.Errorf("redis url: %w", err)
	}
	args := []string{"-h", u.Hostname(), "-p", u.Port(), "-c", strconv.Itoa(clients), "-n", strconv.Itoa(n), "--csv"}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		args = append(args, "--dbnum", db)
	}
	if p, ok := u.User.Password(); ok {
		args = append(args, "-a", p) // never printed
	}
	out, err := runTool(ctx, "redis-benchmark", "redis-tools", append(args, "GET", key)...)
	if err != nil {
		return redisResult{}, err
	}
	return parseRedisBenchmarkCSV(out)
}

// parseRedisBenchmarkCSV reads redis-benchmark 7's --csv output:
//
//	"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
//	"GET key","31347.96","0.181","0.016","0.111","0.623","1.695","5.863"
func parseRedisBenchmarkCSV(out string) (redisResult, error) {
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 {
		return redisResult{}, fmt.Errorf("unexpected redis-benchmark output:\n%s", out)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	get := func(name string) (float64, error) {
		i, ok := col[name]
		if !ok || i >= len(recs[1]) {
			return 0, fmt.Errorf("no %s column in redis-benchmark output:\n%s", name, out)
		}
		return strconv.ParseFloat(recs[1][i], 64)
	}
	var res redisResult
	if res.rps, err = get("rps"); err != nil {
		return redisResult{}, err
	}
	for name, dst := range map[string]*time.Duration{"p50_latency_ms": &res.p50, "p99_latency_ms": &res.p99} {
		if v, err := get(name); err == nil {
			*dst = time.Duration(v * float64(time.Millisecond))
		}
	}
	return res, nil
}
