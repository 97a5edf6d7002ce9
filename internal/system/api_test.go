package system_test

import (
	"context"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/system"
)

// TestAPIStartsOnTheCurrentGenerations: once Start returns (and serve
// listens), the API's names resolve through the projections pointer. After
// a rebuild the collections' plain names no longer exist, so a process
// that served before loading the pointer answered NotFound.
func TestAPIStartsOnTheCurrentGenerations(t *testing.T) {
	e := itest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ptr := readstore.InitialPointer("rebuilt")
	ptr.Generation = 7
	for _, c := range readstore.Collections {
		ptr.Collections[c] = readstore.ShadowName(c, 7)
	}
	if err := e.Reads.SavePointer(ctx, ptr); err != nil {
		t.Fatal(err)
	}
	// A process of its own: clients that have never read the pointer.
	c, err := system.Open(ctx, e.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	api, err := system.NewAPI(e.Config(), c, e.Log, system.APIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop := api.Start(ctx)
	defer stop()
	if got, want := c.Reads.Physical(readstore.Users), readstore.ShadowName(readstore.Users, 7); got != want {
		t.Fatalf("right after Start, users resolve to %q, want %q", got, want)
	}
}

// TestTheAPIPoolHasTheStatementTimeout: the API's requests, in serve and
// in the tests that build the API here, run under the statement timeout.
func TestTheAPIPoolHasTheStatementTimeout(t *testing.T) {
	e := itest.New(t)
	cfg := e.Config()
	cfg.PGStatementTimeout = 1500 * time.Millisecond
	ctx := context.Background()
	c, err := system.OpenAPI(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got string
	if err := c.PG.QueryRow(ctx, "SHOW statement_timeout").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "1500ms" {
		t.Fatalf("statement_timeout = %q, want 1500ms", got)
	}
}

func TestMetricsCarryTheBuild(t *testing.T) {
	families, err := system.NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	b := system.BuildInfo()
	for _, f := range families {
		if f.GetName() != "swapmeet_build_info" {
			continue
		}
		m := f.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if m.GetGauge().GetValue() != 1 || labels["version"] != b.Version || labels["go_version"] != b.GoVersion {
			t.Fatalf("swapmeet_build_info: %v", m)
		}
		return
	}
	t.Fatal("no swapmeet_build_info")
}
