package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/swapmeet/swapmeet/internal/sandbox"
)

// pgbenchScale 10 is a million accounts: big enough that the simple-update
// transactions rarely touch the same row, small enough to load in seconds.
const pgbenchScale = 10

// pgbenchResult is what one pgbench run reports.
type pgbenchResult struct {
	tps        float64 // without initial connection time
	avgLatency time.Duration
}

// createScratchDB creates an empty database on the server of the env's
// database, returns its URL, and has the env drop it when the suite ends.
//
// The drop waits for the end of the suite on purpose: DROP DATABASE forces
// a checkpoint, and the full-page writes that follow a checkpoint would
// tax whatever is measured next.
func createScratchDB(ctx context.Context, e *env) (string, error) {
	serverURL := e.Config().PostgresURL
	name := sandbox.RandomName("swapmeet_bench_")
	if err := execAdmin(ctx, serverURL, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create scratch database: %w", err)
	}
	e.onClose(func() error {
		if err := dropScratchDB(serverURL, name); err != nil {
			return fmt.Errorf("drop scratch database %s: %w", name, err)
		}
		return nil
	})
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("SWAPMEET_PG_URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// dropScratchDB drops without FORCE on purpose: FORCE must terminate every
// backend in the database, and a non-superuser may not terminate the
// autovacuum worker that pgbench's updates attract. A plain DROP stops that
// worker itself. A pgbench backend that has not quite exited yet is waited
// for by retrying.
func dropScratchDB(serverURL, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for range 5 {
		if err = execAdmin(ctx, serverURL, "DROP DATABASE IF EXISTS "+name); err == nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	return err
}

func execAdmin(ctx context.Context, serverURL, sql string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// pgbenchInit loads the standard pgbench tables.
func pgbenchInit(ctx context.Context, dbURL string) error {
	_, err := runPgbench(ctx, "-i", "-s", strconv.Itoa(pgbenchScale), "-q", dbURL)
	return err
}

// pgbenchSimpleUpdate runs the built-in simple-update script: an UPDATE,
// a SELECT and an INSERT in one transaction. A small write transaction with
// a durable commit is what PlaceOrder is at heart, minus the API around it.
func pgbenchSimpleUpdate(ctx context.Context, dbURL string, clients int, d time.Duration) (pgbenchResult, error) {
	seconds := max(1, int((d+time.Second-1)/time.Second)) // -T takes whole seconds
	out, err := runPgbench(ctx, "-n", "-b", "simple-update",
		"-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(2, clients)),
		"-T", strconv.Itoa(seconds), dbURL)
	if err != nil {
		return pgbenchResult{}, err
	}
	return parsePgbench(out)
}

var (
	tpsRe     = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	latencyRe = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
)

// String reads like "pgbench simple-update 193 tps".
func (r pgbenchResult) String() string { return fmt.Sprintf("pgbench simple-update %.0f tps", r.tps) }

func parsePgbench(out string) (pgbenchResult, error) {
	m := tpsRe.FindStringSubmatch(out)
	if m == nil {
		return pgbenchResult{}, fmt.Errorf("no tps line in pgbench output:\n%s", out)
	}
	tps, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return pgbenchResult{}, fmt.Errorf("pgbench tps %q: %w", m[1], err)
	}
	res := pgbenchResult{tps: tps}
	if m := latencyRe.FindStringSubmatch(out); m != nil {
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			res.avgLatency = time.Duration(v * float64(time.Millisecond))
		}
	}
	return res, nil
}

// runPgbench runs pgbench and returns its output.
func runPgbench(ctx context.Context, args ...string) (string, error) {
	return runTool(ctx, "pgbench", "postgresql-client", args...)
}

// runTool runs a reference tool of the Debian package pkg and returns what
// it printed on stdout. Its arguments (database URLs, passwords) are
// never printed; its stderr is, when it fails.
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
