package cdc_test

import (
	"context"
	"math/rand/v2"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/internal/itest"
)

// startCDCProcess runs `swapmeet cdc` against e as a separate process.
func startCDCProcess(t *testing.T, e *itest.Env) *exec.Cmd {
	t.Helper()
	cmd, _ := startCDCProcessLogged(t, e)
	return cmd
}

// startCDCProcessLogged is startCDCProcess, keeping the process's output;
// env overrides e's settings.
func startCDCProcessLogged(t *testing.T, e *itest.Env, env ...string) (*exec.Cmd, *itest.Output) {
	t.Helper()
	return e.StartProcess(t, []string{"cdc"}, append([]string{"SWAPMEET_CDC_METRICS_ADDR=127.0.0.1:0"}, env...)...)
}

// TestCDCSurvivesSIGKILL runs a mixed write load (sign-ups, listings,
// orders through their states, reviews, renames) while the cdc process is
// killed without warning at random moments and restarted. Afterwards every
// document equals what Postgres implies and no cache entry is stale.
func TestCDCSurvivesSIGKILL(t *testing.T) {
	e := itest.New(t)
	_, a := e.StartAPI(t)
	ctx := context.Background()

	cmd := startCDCProcess(t, e)
	e.WaitForSlot(t)
	loadCtx, stopLoad := context.WithCancel(ctx)
	w := itest.NewWorkload(a, 1)
	var wg sync.WaitGroup
	var loadErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		loadErr = w.Run(loadCtx, 0)
	}()
	go func() { // readers fill the cache meanwhile
		defer wg.Done()
		for loadCtx.Err() == nil {
			for _, id := range w.UserIDs() {
				_, _ = a.Queries.GetUser(loadCtx, id.String(), "")
			}
		}
	}()

	for kill := 0; kill < 4; kill++ {
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond) // a random moment, not a synchronisation
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		cmd = startCDCProcess(t, e)
	}
	stopLoad()
	wg.Wait()
	if loadErr != nil {
		t.Fatalf("writes failed: %v", loadErr)
	}
	if w.Ops.Load() < 50 {
		t.Fatalf("only %d writes happened; the test proved nothing", w.Ops.Load())
	}

	e.WaitConverged(t, 60*time.Second)
	stale, err := e.StaleCacheEntries(ctx)
	if err != nil || len(stale) > 0 {
		t.Fatalf("stale cache entries: %v %v", stale, err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("cdc did not exit cleanly on SIGTERM: %v", err)
	}
	t.Logf("%d writes across 4 SIGKILLs", w.Ops.Load())
}
