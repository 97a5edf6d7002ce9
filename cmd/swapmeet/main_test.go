package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/sandbox"
	"github.com/swapmeet/swapmeet/internal/system"
)

// TestMain removes the swapmeet binary the tests built.
func TestMain(m *testing.M) { itest.Main(m) }

// TestArgumentsAreReadBeforeAnythingIsDone: `swapmeet migrate --help`
// against an empty database prints the command's help and creates
// nothing; unknown commands, flags and arguments are refused with exit
// status 2 and create nothing either. Then `swapmeet migrate` does create
// the schema, so the check for tables can see one.
func TestArgumentsAreReadBeforeAnythingIsDone(t *testing.T) {
	pgURL := emptyDatabase(t)
	env := []string{"SWAPMEET_PG_URL=" + pgURL, "SWAPMEET_PG_MIGRATE_URL=" + pgURL}
	for _, tc := range []struct {
		args   []string
		status int
		out    string // in stdout
		errOut string // in stderr
	}{
		{[]string{"migrate", "--help"}, 0, "usage: swapmeet migrate", ""},
		{[]string{"migrate", "-h"}, 0, "usage: swapmeet migrate", ""},
		{[]string{"help", "migrate"}, 0, "usage: swapmeet migrate", ""},
		{[]string{"serve", "--help"}, 0, "usage: swapmeet serve", ""},
		{[]string{"media", "sweep", "--help"}, 0, "-older-than", ""},
		{[]string{"migrate", "now"}, 2, "", `unexpected argument "now"`},
		{[]string{"migrate", "--dry-run"}, 2, "", "flag provided but not defined: -dry-run"},
		{[]string{"migrat"}, 2, "", `unknown command "migrat"`},
		{[]string{"projections", "rebuild", "--collection", "carts"}, 2, "", "want one of users"},
		{[]string{"slot"}, 2, "", "slot needs a subcommand: status, drop"},
	} {
		status, stdout, stderr := runSwapmeet(t, tc.args, env...)
		if status != tc.status || !strings.Contains(stdout, tc.out) || !strings.Contains(stderr, tc.errOut) {
			t.Errorf("swapmeet %s: status %d, stdout:\n%s\nstderr:\n%s\nwant status %d, %q in stdout and %q in stderr",
				strings.Join(tc.args, " "), status, stdout, stderr, tc.status, tc.out, tc.errOut)
		}
		if n := tables(t, pgURL); n != 0 {
			t.Fatalf("swapmeet %s created %d tables", strings.Join(tc.args, " "), n)
		}
	}
	if status, _, stderr := runSwapmeet(t, []string{"migrate"}, env...); status != 0 {
		t.Fatalf("swapmeet migrate: status %d: %s", status, stderr)
	}
	if tables(t, pgURL) == 0 {
		t.Fatal("swapmeet migrate created no tables: the check above could not fail")
	}
}

// TestBadSettingsAreRefusedAllAtOnce: every bad value is named, and
// nothing runs.
func TestBadSettingsAreRefusedAllAtOnce(t *testing.T) {
	status, _, stderr := runSwapmeet(t, []string{"migrate"},
		"SWAPMEET_PG_MAX_CONNS=0", "SWAPMEET_LOG_FORMAT=xml", "SWAPMEET_REQUEST_TIMEOUT=soon")
	if status != 2 {
		t.Errorf("status %d, want 2", status)
	}
	for _, want := range []string{"SWAPMEET_PG_MAX_CONNS", "SWAPMEET_LOG_FORMAT", "SWAPMEET_REQUEST_TIMEOUT"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not name %s:\n%s", want, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	status, stdout, stderr := runSwapmeet(t, []string{"version"})
	if status != 0 || !strings.HasPrefix(stdout, "swapmeet ") || !strings.Contains(stdout, "go1.") {
		t.Fatalf("swapmeet version: status %d, stdout %q, stderr %q", status, stdout, stderr)
	}
}

// runSwapmeet runs the binary to its end and returns its exit status and output.
func runSwapmeet(t *testing.T, args []string, env ...string) (int, string, string) {
	t.Helper()
	bin, err := itest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// emptyDatabase creates a database with no schema on the configured
// server, as the schema's owner, dropped when the test ends, and returns
// the owner's URL of it.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	cfg, err := system.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	owner := cfg.MigrationURL()
	admin, err := pgx.Connect(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := sandbox.RandomName("swapmeet_test_")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, owner)
		if err != nil {
			t.Log(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Log(err)
		}
	})
	u, err := url.Parse(owner)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// tables counts the tables in the database's public schema.
func tables(t *testing.T, pgURL string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
