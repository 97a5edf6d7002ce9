package cdc_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// pausingWriter is a rebuild's progress output that stops the rebuild at
// the first line containing at: the rebuild writes its progress from the
// goroutine that does the work.
type pausingWriter struct {
	at      string
	paused  chan struct{}
	release chan struct{}
	resumed sync.Once

	mu  sync.Mutex
	out bytes.Buffer
	hit bool
}

func newPausingWriter(at string) *pausingWriter {
	return &pausingWriter{at: at, paused: make(chan struct{}), release: make(chan struct{})}
}

func (w *pausingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.out.Write(p)
	stop := !w.hit && strings.Contains(string(p), w.at)
	if stop {
		w.hit = true
	}
	w.mu.Unlock()
	if stop {
		close(w.paused)
		<-w.release
	}
	return len(p), nil
}

func (w *pausingWriter) resume() { w.resumed.Do(func() { close(w.release) }) }

func (w *pausingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

func (w *pausingWriter) waitPaused(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-w.paused:
	case <-time.After(within):
		t.Fatalf("the rebuild did not reach %q within %s:\n%s", w.at, within, w.String())
	}
}

// TestCatchUpIsolation rebuilds listings while no CDC runs, with a
// listing and a user changed between the new slot's start and the
// catch-up. The catch-up puts the listing change into the new generation
// only: the applied position does not reach the change's token (only the
// listings were rebuilt), while after the switch the rebuild's
// announcement drops the listing's cache entry and moves the page epoch.
// The old slot, which alone has the user change, is kept; a CDC that
// starts later applies it up to the handover before it moves on.
func TestCatchUpIsolation(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	stop := e.RunCDC(t, e.CDCProcess())
	seedListings(t, e, 50)
	waitApplied(t, e, e.CurrentLSN(t))
	stop()

	var id string
	if err := e.PG.QueryRow(ctx, `SELECT id::text FROM listings ORDER BY id LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	c := e.Cache()
	key := c.ListingKey(id)
	doc, err := e.Reads.FindRaw(ctx, readstore.Listings, id)
	if err != nil {
		t.Fatal(err)
	}
	lsn, _ := doc.Lookup("lsn").Int64OK()
	if ok, err := c.Fill(ctx, key, uint64(lsn), doc); err != nil || !ok {
		t.Fatalf("fill %s: %v, %v", key, ok, err)
	}
	cachedBefore, err := e.Redis.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	genBefore, err := c.PageEpoch(ctx, readstore.Listings)
	if err != nil {
		t.Fatal(err)
	}

	pause := newPausingWriter("indexes built")
	t.Cleanup(pause.resume)
	var run rebuildRun
	rb := run.rebuild(e, readstore.Listings)
	rb.Progress = pause
	rb.HandoverTimeout = time.Second // no CDC will take the old slot
	rebuilt := make(chan error, 1)
	go func() { rebuilt <- rb.Run(ctx) }()
	pause.waitPaused(t, 120*time.Second)
	execSQL(t, e, `UPDATE listings SET title = 'changed during the rebuild', version = version + 1 WHERE id = $1`, id)
	execSQL(t, e, `UPDATE users SET bio = 'changed during the rebuild'`)
	token := e.CurrentLSN(t)
	pause.resume()
	select {
	case err := <-rebuilt:
		if err != nil {
			t.Fatalf("rebuild: %v\n%s", err, pause.String())
		}
	case <-time.After(180 * time.Second):
		t.Fatalf("the rebuild did not finish:\n%s", pause.String())
	}

	// The catch-up did its job on the new generation...
	var got readstore.Listing
	raw, err := e.Reads.FindRaw(ctx, readstore.Listings, id)
	if err == nil {
		err = bson.Unmarshal(raw, &got)
	}
	if err != nil || got.Title != "changed during the rebuild" {
		t.Fatalf("the new generation has %q (%v); the catch-up missed the change", got.Title, err)
	}
	// ...and nothing live.
	if applied := appliedLSN(t, e); applied >= token {
		t.Errorf("the applied position %s reached the token %s of a change no live CDC applied",
			consistency.FormatLSN(applied), consistency.FormatLSN(token))
	}
	// Once readers are switched, the rebuild announces itself: the cached
	// document is replaced by a tombstone and the page epoch moves (see
	// TestRebuildAfterALostSlotIsAnnounced), but the position is not
	// raised, since only the listings were rebuilt.
	if payload, hit, err := c.Get(ctx, key); err != nil || hit {
		t.Errorf("after the switch the cache still serves %.20q (%v): the rebuild was not announced", payload, err)
	}
	if cachedAfter, err := e.Redis.Get(ctx, key).Bytes(); err == nil && bytes.Equal(cachedBefore, cachedAfter) {
		t.Errorf("after the switch the cache entry is unchanged")
	}
	if gen, err := c.PageEpoch(ctx, readstore.Listings); err != nil || gen <= genBefore {
		t.Errorf("the listings page epoch is %d (%v), was %d: the rebuild did not move it", gen, err, genBefore)
	}

	// A CDC that starts now finishes the old slot, then moves on.
	if !slotExists(t, e, e.Slot) {
		t.Fatal("the rebuild dropped the old slot, which alone has the users' change")
	}
	e.StartCDC(t)
	waitApplied(t, e, e.CurrentLSN(t))
	requireNoDrift(t, e, "after a CDC started")
	itest.Eventually(t, 30*time.Second, "the cdc to drop the old slot", func() (bool, error) {
		return !slotExists(t, e, e.Slot), nil
	})
}
