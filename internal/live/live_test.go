package live_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/feed"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/live"
)

var ctx = context.Background()

// hubOn runs a hub of its own over the test's API and CDC.
func hubOn(t *testing.T, e *itest.Env, a *app.App, opts live.Options) *live.Hub {
	t.Helper()
	w := cache.NewWatcher(e.Redis, cache.AppliedKeysFor(e.RedisPrefix), e.Log)
	h := live.NewHub(e.Redis, e.RedisPrefix, w.Applied, a.Queries, opts, e.Log)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go w.Run(ctx)
	go h.Run(ctx)
	return h
}

// gate lets a test hold a stream's sender, as a client that stops reading
// would.
type gate struct {
	open chan struct{}
	out  chan any
}

func newGate() *gate { return &gate{open: make(chan struct{}), out: make(chan any, 1024)} }

func (g *gate) send(m any) error {
	<-g.open
	g.out <- m
	return nil
}

func signUp(t *testing.T, a *app.App, name string) uuid.UUID {
	t.Helper()
	u, err := a.Commands.SignUp(ctx, fmt.Sprintf("%s-%s@example.com", name, uuid.NewString()[:8]), "correct horse", name)
	if err != nil {
		t.Fatal(err)
	}
	return u.UserID
}

func createListing(t *testing.T, a *app.App, seller uuid.UUID, title string) (uuid.UUID, string) {
	t.Helper()
	w, err := a.Commands.CreateListing(ctx, seller, app.ListingInput{
		Title: title, Description: "Works.", Category: "lamps", Condition: "GOOD",
		Price: &app.Money{Currency: "EUR", Minor: 1000},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	return w.ID, w.ConsistencyToken
}

// TestSlowOrderWatcherResyncs: a subscriber that stops reading holds at
// most Buffer orders; past them it is told to resync, and the list it
// refetches at the resync's token has every order.
func TestSlowOrderWatcherResyncs(t *testing.T) {
	e := itest.New(t)
	_, a := e.StartAPI(t)
	e.StartCDC(t)
	h := hubOn(t, e, a, live.Options{Heartbeat: time.Hour, MaxLifetime: time.Hour, MaxStreams: 10, MaxStreamsPerOwner: 10, Buffer: 3, SessionCheck: time.Hour})
	seller, buyer := signUp(t, a, "seller"), signUp(t, a, "buyer")

	g := newGate()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- h.WatchOrders(ctx, live.Stream{Owner: "seller"}, seller, app.RoleSeller, "", func(s live.OrderState) error { return g.send(s) })
	}()
	const orders = 12
	var last string
	for i := range orders {
		l, _ := createListing(t, a, seller, fmt.Sprint("Lamp ", i))
		o, err := a.Commands.PlaceOrder(ctx, buyer, []string{l.String()}, fmt.Sprint("key-", i))
		if err != nil {
			t.Fatal(err)
		}
		last = o.ConsistencyToken
	}
	// Every order has reached the hub while the reader was stuck.
	pos, _ := consistency.ParseWriteToken(last)
	want := pos.LSN
	itest.Eventually(t, 30*time.Second, "the hub to pass the last order", func() (bool, error) {
		return h.Position(feed.Orders) >= want, nil
	})
	close(g.open)
	var resync *live.OrderState
	sent := 0
	for resync == nil {
		select {
		case m := <-g.out:
			s := m.(live.OrderState)
			if s.Resync {
				resync = &s
			}
			if s.Order != nil {
				sent++
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no resync after %d orders sent", sent)
		}
	}
	if sent > 3+1 {
		t.Errorf("%d orders sent before the resync; the buffer holds 3 (and one in hand)", sent)
	}
	views, _, err := a.Queries.ListOrders(ctx, seller, app.RoleSeller, "", 50, "", resync.Token)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != orders {
		t.Fatalf("the refetch at the resync's token has %d orders, want %d", len(views), orders)
	}
}

// listingOnAHub starts an API, the CDC and a hub of its own, and lists a
// lamp: the hub, the app, the seller, the listing and its token.
func listingOnAHub(t *testing.T) (*live.Hub, *app.App, uuid.UUID, uuid.UUID, string) {
	e := itest.New(t)
	_, a := e.StartAPI(t)
	e.StartCDC(t)
	h := hubOn(t, e, a, live.Options{Heartbeat: time.Hour, MaxLifetime: time.Hour, MaxStreams: 10, MaxStreamsPerOwner: 10, Buffer: 3, SessionCheck: time.Hour})
	seller := signUp(t, a, "seller")
	id, token := createListing(t, a, seller, "Lamp")
	return h, a, seller, id, token
}

// TestSlowListingWatcherGetsTheLatest: a subscriber that stops reading
// while a listing changes ten times then receives its newest state, not
// ten: it holds one state at a time.
func TestSlowListingWatcherGetsTheLatest(t *testing.T) {
	h, a, seller, id, token := listingOnAHub(t)

	g := newGate()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = h.WatchListing(ctx, live.Stream{Owner: "anyone"}, id.String(), token, func(s live.ListingState) error { return g.send(s) })
	}()
	const updates = 10
	for v := int64(1); v <= updates; v++ {
		w, err := a.Commands.UpdateListing(ctx, seller, id.String(), v, app.ListingInput{Price: &app.Money{Currency: "EUR", Minor: 1000 + v}}, []string{"price"})
		if err != nil {
			t.Fatal(err)
		}
		token = w.ConsistencyToken
	}
	pos, _ := consistency.ParseWriteToken(token)
	want := pos.LSN
	itest.Eventually(t, 30*time.Second, "the hub to pass the last update", func() (bool, error) {
		return h.Position(feed.Listings) >= want, nil
	})
	close(g.open)
	var versions []int64
	for len(versions) == 0 || versions[len(versions)-1] < updates+1 {
		select {
		case m := <-g.out:
			if s := m.(live.ListingState); s.Listing != nil {
				versions = append(versions, s.Listing.Version)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no newest state; received versions %v", versions)
		}
	}
	// The first send was held with the state in hand (none: the token
	// was current, so a heartbeat); then one coalesced state.
	if len(versions) > 2 {
		t.Errorf("received %d states %v; a held reader should get the newest, not every one", len(versions), versions)
	}
}

// TestEveryChangeReachesAWatcher: a watcher is shown each of many changes
// made one after the other, each before the next is made. The hub raises
// its position only after dispatching a change, and the test widens that
// moment: a fetch that read at the hub's position would read at the
// position before the change, could be answered from the near cache the
// change's announcement has not evicted yet, and the change would then be
// shown only with the next one (here, never).
func TestEveryChangeReachesAWatcher(t *testing.T) {
	defer live.SetAfterDispatch(func(k feed.Kind) {
		if k == feed.Listings {
			time.Sleep(20 * time.Millisecond)
		}
	})()
	h, a, seller, id, token := listingOnAHub(t)

	versions := make(chan int64, 1024)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = h.WatchListing(ctx, live.Stream{Owner: "anyone"}, id.String(), token, func(s live.ListingState) error {
			if s.Listing != nil {
				versions <- s.Listing.Version
			}
			return nil
		})
	}()
	const updates = 40
	seen := int64(0)
	for v := int64(1); v <= updates; v++ {
		// Read the listing first, as a client would: the read fills the
		// near cache with the state the change replaces.
		if _, err := a.Queries.GetListing(ctx, id.String(), token); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Commands.UpdateListing(ctx, seller, id.String(), v, app.ListingInput{Price: &app.Money{Currency: "EUR", Minor: 1000 + v}}, []string{"price"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(10 * time.Second)
		for seen < v+1 {
			select {
			case seen = <-versions:
			case <-deadline:
				t.Fatalf("update %d: the watcher has version %d, not %d", v, seen, v+1)
			}
		}
	}
}
