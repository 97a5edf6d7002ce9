package cdc_test

import (
	"context"
	"math/rand/v2"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/cdc"
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
	// The history ends where every row is and chains: no change was
	// recorded twice by the replays, none left out, and every object the
	// load made has one.
	wantHistoryClean(t, e, objectRows(t, e))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("cdc did not exit cleanly on SIGTERM: %v", err)
	}
	t.Logf("%d writes across 4 SIGKILLs", w.Ops.Load())
}

// wantHistoryClean fails the test unless the history of at least
// atLeast objects is checked and agrees with their rows and chains.
func wantHistoryClean(t *testing.T, e *itest.Env, atLeast int) {
	t.Helper()
	d, err := cdc.VerifyHistory(context.Background(), e.PG, e.Search)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Clean() || d.Checked < atLeast {
		t.Fatalf("history: %d objects checked (want %d or more), differing: %v", d.Checked, atLeast, d.Differ)
	}
}

// TestHistoryReplayAfterSIGKILLMidTransaction: one transaction changes
// more rows than a batch holds history entries, so the CDC writes its
// entries while still decoding it. The CDC is killed once some are
// written and none announced, and restarted: the server sends the
// transaction again, and the history ends with exactly one entry per
// row change, chained.
func TestHistoryReplayAfterSIGKILLMidTransaction(t *testing.T) {
	const n = 6000 // three mid-transaction writes of entries
	e := itest.New(t)
	ctx := context.Background()
	cmd := startCDCProcess(t, e)
	e.WaitForSlot(t)
	seller := e.SeedOneSeller(t, n)
	itest.Eventually(t, 60*time.Second, "the seeded listings to be applied", func() (bool, error) {
		return historyCount(ctx, e, "CREATED") == n, nil
	})
	if _, err := e.PG.Exec(ctx, `UPDATE listings SET price_minor = price_minor + 1 WHERE seller_id = $1`, seller); err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, 60*time.Second, "some of the update's entries to be written", func() (bool, error) {
		return historyCount(ctx, e, "UPDATED") > 0, nil
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if got := historyCount(ctx, e, "UPDATED"); got >= n {
		t.Logf("the batch finished before the kill (%d entries); the replay is still checked", got)
	}
	startCDCProcess(t, e)
	itest.Eventually(t, 60*time.Second, "the update's entries", func() (bool, error) {
		return historyCount(ctx, e, "UPDATED") >= n, nil
	})
	e.WaitConverged(t, 60*time.Second)
	if got := historyCount(ctx, e, "UPDATED"); got != n {
		t.Fatalf("%d entries of the update, want %d: one per row change", got, n)
	}
	wantHistoryClean(t, e, n)
}

// objectRows is how many objects the history tables hold in Postgres.
func objectRows(t *testing.T, e *itest.Env) int {
	t.Helper()
	var n int
	err := e.PG.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM listings)
		+ (SELECT count(*) FROM orders) + (SELECT count(*) FROM reviews)`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func historyCount(ctx context.Context, e *itest.Env, op string) int {
	var c int
	_ = e.Search.Pool().QueryRow(ctx, `SELECT count(*) FROM history WHERE object_type = 'listing' AND operation = $1`, op).Scan(&c)
	return c
}
