package system_test

import (
	"context"
	"testing"

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
