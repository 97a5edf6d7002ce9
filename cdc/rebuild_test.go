package cdc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// seedListings bulk-inserts n listings (and their sellers) straight into
// Postgres, to give a rebuild something to load.
func seedListings(t *testing.T, e *itest.Env, n int) {
	t.Helper()
	_, err := e.PG.Exec(context.Background(), `
		WITH s AS (
			INSERT INTO users (id, display_name)
			SELECT gen_random_uuid(), 'Seeded seller ' || g FROM generate_series(1, 20) g
			RETURNING id
		), sellers AS (SELECT array_agg(id) AS ids FROM s)
		INSERT INTO listings (id, seller_id, title, description, category, condition, price_currency, price_minor, attributes)
		SELECT gen_random_uuid(), sellers.ids[1 + g % 20], 'Seeded item ' || g, 'bulk', 'misc', 'GOOD', 'EUR', 100 + g, '{"size": "M"}'
		FROM generate_series(1, $1) g, sellers`, n)
	if err != nil {
		t.Fatal(err)
	}
}

func (r *rebuildRun) rebuild(e *itest.Env, collections ...string) *cdc.Rebuild {
	return &cdc.Rebuild{
		Reader:      wal.Config{ConnString: e.PGURL, Publication: e.Publication, Log: e.Log},
		BaseSlot:    e.Slot,
		PG:          e.PG,
		Reads:       e.Reads,
		Sink:        e.Projector(),
		Search:      e.Search,
		Collections: collections,
		Progress:    &r.out,
		Log:         e.Log,
		Grace:       time.Second,
	}
}

type rebuildRun struct{ out bytes.Buffer }

// historyKeys are the history's entries, as "position/seq".
func historyKeys(t *testing.T, e *itest.Env) map[string]bool {
	t.Helper()
	rows, err := e.Search.Pool().Query(context.Background(), `SELECT position || '/' || seq FROM history`)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bool, len(keys))
	for _, k := range keys {
		out[k] = true
	}
	return out
}

func slotExists(t *testing.T, e *itest.Env, slot string) bool {
	t.Helper()
	var n int
	if err := e.PG.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestRebuildWhileServing rebuilds every collection, and the search
// store with the listings, under a write load while readers keep asking
// for listings that exist. No reader ever gets NotFound or an empty page;
// afterwards there is no drift (the search rows equal Postgres too), the
// old slot and the old search generation are gone.
func TestRebuildWhileServing(t *testing.T) {
	e := itest.New(t)
	e.StartCDC(t)
	_, a := e.StartAPI(t)
	ctx := context.Background()
	w := itest.NewWorkload(a, 11)
	if err := w.Run(ctx, 200); err != nil {
		t.Fatal(err)
	}
	seedListings(t, e, 1000)
	e.WaitConverged(t, 60*time.Second)
	var known []string
	if err := e.PG.QueryRow(ctx, `SELECT array_agg(id::text) FROM (SELECT id FROM listings ORDER BY random() LIMIT 50) x`).Scan(&known); err != nil {
		t.Fatal(err)
	}

	loadCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var loadErr error
	// Only what the rebuild could cause counts as a failure: NotFound for a
	// listing that exists, or an empty page where results exist. Timeouts
	// of a loaded machine are counted apart.
	var reads, failures, slow atomic.Int64
	var firstFailure atomic.Value
	fail := func(err error) {
		if app.ErrorCode(err) == app.CodeUnavailable {
			slow.Add(1)
			return
		}
		failures.Add(1)
		firstFailure.CompareAndSwap(nil, err.Error())
	}
	wg.Add(3)
	// A bounded load: enough to change every collection during each step
	// of the rebuild, not so much that a slow machine never catches up.
	go func() { defer wg.Done(); loadErr = w.Run(loadCtx, 400) }()
	for r := 0; r < 2; r++ {
		go func() {
			defer wg.Done()
			for i := 0; loadCtx.Err() == nil; i++ {
				id := known[i%len(known)]
				if _, err := a.Queries.GetListing(loadCtx, id, ""); err != nil && loadCtx.Err() == nil {
					fail(fmt.Errorf("GetListing %s: %w", id, err))
				}
				page, _, err := a.Queries.SearchListings(loadCtx, app.ListingSearch{Status: "AVAILABLE", PageSize: 5}, "")
				switch {
				case loadCtx.Err() != nil:
				case err != nil:
					fail(fmt.Errorf("SearchListings: %w", err))
				case len(page) == 0:
					fail(errors.New("SearchListings: an empty page"))
				}
				reads.Add(2)
			}
		}()
	}

	oldSearch, err := e.Search.Live(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := historyKeys(t, e)
	var run rebuildRun
	if err := run.rebuild(e, readstore.Collections...).Run(ctx); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, run.out.String())
	}
	// Let the load and the readers run on the new generation for a while.
	itest.Eventually(t, 30*time.Second, "reads on the new generation", func() (bool, error) {
		return reads.Load() > 200, nil
	})
	stop()
	wg.Wait()
	if loadErr != nil {
		t.Fatalf("writes failed during the rebuild: %v", loadErr)
	}
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d reads failed during the rebuild; first: %v", n, reads.Load(), firstFailure.Load())
	}
	p, err := e.Reads.LoadPointer(ctx)
	if err != nil || p.Generation != 1 || p.Collections[readstore.Listings] != "listings_g1" {
		t.Fatalf("pointer after the rebuild = %+v, %v", p, err)
	}
	// The search store switched with the pointer, and the old generation
	// is gone once the rebuild is done.
	gens, err := e.Search.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 1 || gens[0].State != "live" || gens[0].ID != p.Search || p.Search == oldSearch.ID {
		t.Fatalf("search generations after the rebuild: %+v; the pointer names %d, the one before was %d", gens, p.Search, oldSearch.ID)
	}
	itest.Eventually(t, 30*time.Second, "the old slot to be dropped", func() (bool, error) {
		return !slotExists(t, e, e.Slot), nil
	})
	e.WaitConverged(t, 120*time.Second)
	// The history is not a projection: every entry recorded before the
	// rebuild is still there, and it ends where the rows are.
	after := historyKeys(t, e)
	for k := range kept {
		if !after[k] {
			t.Fatalf("history entry %s was lost by the rebuild (%d before, %d after)", k, len(kept), len(after))
		}
	}
	if len(kept) < 1000 || len(after) <= len(kept) {
		t.Fatalf("history: %d entries before the rebuild, %d after: want the seeded listings' and the load's", len(kept), len(after))
	}
	wantHistoryClean(t, e, 1000)
	if !strings.Contains(run.out.String(), "listings") || !strings.Contains(run.out.String(), "rows/s") {
		t.Errorf("no progress was shown:\n%s", run.out.String())
	}
	t.Logf("%d reads (%d timed out), %d writes during the rebuild\n%s", reads.Load(), slow.Load(), w.Ops.Load(), run.out.String())
}

// TestRebuildInterrupted kills a rebuild in the middle of loading: the
// live side keeps serving, and a second rebuild cleans up and completes.
func TestRebuildInterrupted(t *testing.T) {
	e := itest.New(t)
	e.StartCDC(t)
	_, a := e.StartAPI(t)
	ctx := context.Background()
	seedListings(t, e, 20000)
	// 20,000 documents at a few hundred a second, under the race detector
	// and beside other packages' tests.
	e.WaitConverged(t, 5*time.Minute)

	bin, err := itest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "projections", "rebuild", "--collection", "listings")
	cmd.Env = append(append(os.Environ(), e.Environ()...), "SWAPMEET_CDC_METRICS_ADDR=127.0.0.1:0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, 60*time.Second, "the rebuild to start loading", func() (bool, error) {
		n, err := e.Reads.DB().Collection("listings_g1").EstimatedDocumentCount(ctx)
		return n > 0, err
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	p, err := e.Reads.LoadPointer(ctx)
	if err != nil || p.Generation != 0 || p.Slot != e.Slot {
		t.Fatalf("an interrupted rebuild changed the pointer: %+v, %v", p, err)
	}
	var id string
	if err := e.PG.QueryRow(ctx, `SELECT id::text FROM listings LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Queries.GetListing(ctx, id, ""); err != nil {
		t.Fatalf("the live side stopped serving: %v", err)
	}
	if !slotExists(t, e, e.Slot+"_r1") {
		t.Fatal("expected the interrupted rebuild's slot to be left over")
	}

	// The killed process's session, which held the rebuild lock, ends
	// when its backend notices the closed connection.
	itest.Eventually(t, 30*time.Second, "the killed rebuild's lock to be released", func() (bool, error) {
		var held int
		err := e.PG.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, 0x5377, 0x61707262).Scan(&held)
		return held == 0, err
	})
	var run rebuildRun
	if err := run.rebuild(e, readstore.Listings).Run(ctx); err != nil {
		t.Fatalf("second rebuild: %v\n%s", err, run.out.String())
	}
	if !strings.Contains(run.out.String(), "leftover") {
		t.Errorf("the second run did not report cleaning up:\n%s", run.out.String())
	}
	e.WaitConverged(t, 60*time.Second)
	names, err := e.Reads.CollectionNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices := strings.Join(names, ","); strings.Contains(slices, "listings,") || !strings.Contains(slices, "listings_g1") {
		t.Errorf("collections after the second rebuild: %v", names)
	}
}

// TestLostSlot drops the slot under a running CDC: it stops with a clear
// message and a non-zero status, and a rebuild brings the service back.
func TestLostSlot(t *testing.T) {
	e := itest.New(t)
	_, a := e.StartAPI(t)
	ctx := context.Background()
	cmd, logs := startCDCProcessLogged(t, e)
	e.WaitForSlot(t)
	w := itest.NewWorkload(a, 5)
	if err := w.Run(ctx, 100); err != nil {
		t.Fatal(err)
	}
	// Drop it as max_slot_wal_keep_size or an operator would: the walsender
	// is terminated and the slot dropped before the CDC reconnects.
	itest.Eventually(t, 30*time.Second, "the slot to be dropped", func() (bool, error) {
		_, err := e.PG.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, e.Slot)
		if err != nil {
			return false, err
		}
		_, err = e.PG.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, e.Slot)
		return err == nil, err
	})
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("cdc exited with %v, want a non-zero status", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the cdc kept running without its slot")
	}
	if !strings.Contains(logs.String(), "projections rebuild") {
		t.Errorf("the cdc did not tell the operator what to do:\n%s", logs.String())
	}
	if err := w.Run(ctx, 100); err != nil { // writes go on regardless
		t.Fatal(err)
	}

	var run rebuildRun
	if err := run.rebuild(e, readstore.Collections...).Run(ctx); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, run.out.String())
	}
	startCDCProcess(t, e) // follows the pointer to the new slot
	if err := w.Run(ctx, 100); err != nil {
		t.Fatal(err)
	}
	e.WaitConverged(t, 60*time.Second)
}

// TestRebuildAfterALostSlotIsAnnounced: the documented recovery from a
// lost slot (rebuild, then start the CDC) must not leave the caches with
// the pre-outage state. A listing is read (so Redis and the API's near
// cache hold it), the CDC stops and its slot is dropped, the listing
// changes (token T), the read side is rebuilt: GetListing with T returns
// the new price at once, before the CDC is back, and after it.
func TestRebuildAfterALostSlotIsAnnounced(t *testing.T) {
	e := itest.New(t)
	stopCDC := e.RunCDC(t, e.CDCProcess())
	_, a := e.StartAPI(t)
	srvB, b := e.StartAPI(t) // a second replica, with its own near cache and watcher
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seller, err := a.Commands.SignUp(ctx, "lost-slot@example.com", "correct horse", "Seller")
	if err != nil {
		t.Fatal(err)
	}
	created, err := a.Commands.CreateListing(ctx, seller.UserID, app.ListingInput{
		Title: "Lamp", Description: "Bright.", Category: "lamps", Condition: "GOOD", Price: &app.Money{Currency: "EUR", Minor: 1000},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := created.ID.String()
	for range 2 { // the store, then the caches
		for _, r := range []*app.App{a, b} {
			if v, err := r.Queries.GetListing(ctx, id, created.ConsistencyToken); err != nil || v.Price.Minor != 1000 {
				t.Fatalf("before the outage: %+v, %v", v.Price, err)
			}
		}
	}
	// A stream on the second replica, open through the outage.
	stream, err := swapmeetv1connect.NewListingServiceClient(srvB.Client(), srvB.URL).
		WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: id, ResumeToken: created.ConsistencyToken}))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var prices []int64
	go func() {
		for stream.Receive() {
			if l := stream.Msg().GetListing(); l != nil {
				mu.Lock()
				prices = append(prices, l.GetPrice().GetAmountMinor())
				mu.Unlock()
			}
		}
	}()

	stopCDC()
	ptr, err := e.Reads.LoadPointer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.PG.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, ptr.Slot); err != nil {
		t.Fatal(err)
	}
	changed, err := a.Commands.UpdateListing(ctx, seller.UserID, id, created.Version, app.ListingInput{Price: &app.Money{Currency: "EUR", Minor: 2500}}, []string{"price"})
	if err != nil {
		t.Fatal(err)
	}

	var r rebuildRun
	if err := r.rebuild(e, readstore.Collections...).Run(ctx); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, r.out.String())
	}
	check := func(when string) {
		t.Helper()
		for i, r := range []*app.App{a, b} {
			itest.Eventually(t, 5*time.Second, fmt.Sprintf("replica %d's watcher to hear the rebuild", i), func() (bool, error) {
				v, err := r.Queries.GetListing(ctx, id, changed.ConsistencyToken)
				if err != nil {
					return false, err
				}
				if v.Price.Minor != 2500 {
					return false, fmt.Errorf("%s: GetListing with the update's token answered price %d, want 2500", when, v.Price.Minor)
				}
				return true, nil
			})
			if v, err := r.Queries.GetListing(ctx, id, ""); err != nil || v.Price.Minor != 2500 {
				t.Fatalf("%s: replica %d: GetListing without a token answered %+v, %v: a cache kept the pre-outage state", when, i, v.Price, err)
			}
		}
	}
	check("after the rebuild, the CDC still down")
	itest.Eventually(t, 10*time.Second, "the stream open through the outage to send the new price", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(prices, 2500), fmt.Errorf("the stream sent the prices %v", prices)
	})
	e.StartCDC(t)
	check("with the CDC back")
	// The outage's price edit was never decoded: the rebuild reconciled
	// the listing's history to its row, with one unannotated entry.
	wantHistoryClean(t, e, 1)
	var annotated bool
	var changes string
	if err := e.Search.Pool().QueryRow(ctx, `SELECT annotated, changes::text FROM history WHERE object_type = 'listing' AND object_id = $1
		ORDER BY position DESC, seq DESC LIMIT 1`, id).Scan(&annotated, &changes); err != nil {
		t.Fatal(err)
	}
	if annotated || !strings.Contains(changes, `"after": "2500"`) {
		t.Fatalf("the listing's last history entry: annotated %v, %s; want the reconciled price", annotated, changes)
	}
}
