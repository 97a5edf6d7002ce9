package rpc_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/feed"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/live"
)

// recv is one message or error of a stream, read on its own goroutine so a
// test can wait for it with a deadline.
type recv[T any] struct {
	msg *T
	err error
}

// receive reads a server stream into a channel until it ends.
func receive[T any](s *connect.ServerStreamForClient[T]) <-chan recv[T] {
	out := make(chan recv[T], 1024)
	go func() {
		defer close(out)
		for s.Receive() {
			out <- recv[T]{msg: s.Msg()}
		}
		out <- recv[T]{err: s.Err()}
	}()
	return out
}

// next waits for the next message that is not a heartbeat.
func nextListing(t *testing.T, ch <-chan recv[swapmeetv1.WatchListingResponse], within time.Duration) (*swapmeetv1.WatchListingResponse, error) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return nil, errors.New("stream closed")
			}
			if r.err != nil {
				return nil, r.err
			}
			if r.msg.ResumeToken == "" {
				t.Fatalf("a message without a resume token: %v", r.msg)
			}
			if r.msg.Listing != nil {
				return r.msg, nil
			}
		case <-deadline:
			t.Fatalf("no listing message within %s", within)
		}
	}
}

func TestWatchListingSendsTheCurrentStateThenEachChange(t *testing.T) {
	m := newMarket(t)
	m.e.StartCDC(t)
	seller := m.signUp("seller")
	created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	id := created.Msg.ListingId

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The write's token as the resume token: the listing is there, and
	// unchanged since, so the first message is a heartbeat.
	s, err := m.listings.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: id, ResumeToken: created.Msg.ConsistencyToken}))
	if err != nil {
		t.Fatal(err)
	}
	ch := receive(s)
	if r := <-ch; r.err != nil || r.msg.Listing != nil || r.msg.ResumeToken == "" {
		t.Fatalf("first message %v, %v: want a heartbeat with a token", r.msg, r.err)
	}
	// Without a token, the first message is the current state.
	s2, err := m.listings.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: id}))
	if err != nil {
		t.Fatal(err)
	}
	first, err := nextListing(t, receive(s2), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if first.Listing.Version != 1 {
		t.Fatalf("first state at version %d, want 1", first.Listing.Version)
	}
	for v := int64(1); v < 4; v++ {
		if _, err := m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{
			ListingId: id, ExpectedVersion: v, Price: eur(1000 + v), UpdateMask: mask("price"),
		}, seller.token)); err != nil {
			t.Fatal(err)
		}
		got, err := nextListing(t, ch, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got.Listing.Version != v+1 || got.Listing.Price.AmountMinor != 1000+v {
			t.Fatalf("after update %d: version %d price %d", v, got.Listing.Version, got.Listing.Price.AmountMinor)
		}
	}
}

// statusRank orders an order's statuses along its life.
var statusRank = map[swapmeetv1.OrderStatus]int{
	swapmeetv1.OrderStatus_ORDER_STATUS_PENDING:   1,
	swapmeetv1.OrderStatus_ORDER_STATUS_PAID:      2,
	swapmeetv1.OrderStatus_ORDER_STATUS_SHIPPED:   3,
	swapmeetv1.OrderStatus_ORDER_STATUS_DELIVERED: 4,
}

// orderWatch is a WatchOrders stream being read.
type orderWatch struct {
	t      *testing.T
	cancel context.CancelFunc
	ch     <-chan recv[swapmeetv1.WatchOrdersResponse]
	token  string // the last resume token received
	orders []*swapmeetv1.Order
}

func (m *market) watchOrders(t *testing.T, token, resume string, role swapmeetv1.OrderRole) *orderWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	s, err := m.orders.WatchOrders(ctx, authed(&swapmeetv1.WatchOrdersRequest{Role: role, ResumeToken: resume}, token))
	if err != nil {
		t.Fatal(err)
	}
	return &orderWatch{t: t, cancel: cancel, ch: receive(s)}
}

// until reads messages until cond holds for one of them, and returns it.
// Heartbeats count as messages; resyncs fail the test.
func (w *orderWatch) until(within time.Duration, what string, cond func(*swapmeetv1.WatchOrdersResponse) bool) *swapmeetv1.WatchOrdersResponse {
	w.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case r, ok := <-w.ch:
			if !ok {
				w.t.Fatalf("stream closed while waiting for %s", what)
			}
			if r.err != nil {
				w.t.Fatalf("stream ended while waiting for %s: %v", what, r.err)
			}
			if r.msg.ResumeToken == "" {
				w.t.Fatalf("a message without a resume token: %v", r.msg)
			}
			if r.msg.Resync {
				w.t.Fatalf("unexpected resync while waiting for %s", what)
			}
			w.token = r.msg.ResumeToken
			if r.msg.Order != nil {
				w.orders = append(w.orders, r.msg.Order)
			}
			if cond(r.msg) {
				return r.msg
			}
		case <-deadline:
			w.t.Fatalf("no %s within %s", what, within)
		}
	}
}

func (w *orderWatch) status(id string, s swapmeetv1.OrderStatus) {
	w.t.Helper()
	w.until(15*time.Second, "order "+s.String(), func(m *swapmeetv1.WatchOrdersResponse) bool {
		return m.Order != nil && m.Order.OrderId == id && m.Order.Status == s
	})
}

// past waits for a message whose token is at or after a write's.
func (w *orderWatch) past(writeToken string) {
	w.t.Helper()
	pos, err := consistency.ParseWriteToken(writeToken)
	if err != nil {
		w.t.Fatal(err)
	}
	want := pos.LSN // the read side's positions are its WAL positions while it follows its first history
	w.until(15*time.Second, "a token past the write", func(m *swapmeetv1.WatchOrdersResponse) bool {
		got, err := consistency.ParseToken(m.ResumeToken)
		return err == nil && got >= want
	})
}

var fastBeats = itest.APIOptions{Watch: func(o *live.Options) { o.Heartbeat = 200 * time.Millisecond }}

// TestWatchOrdersResumesWithoutGapOrRepeat: a buyer watches an order from
// PENDING to DELIVERED over each protocol, is cut off after PAID, misses
// SHIPPED, and resumes with its last token: SHIPPED comes from the
// history, DELIVERED live, and no state ever goes backwards. A stranger
// watching all along receives no order at all.
func TestWatchOrdersResumesWithoutGapOrRepeat(t *testing.T) {
	for _, p := range append(protocols, struct {
		name string
		opts []connect.ClientOption
	}{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}}) {
		t.Run(p.name, func(t *testing.T) {
			m := newMarketWith(t, fastBeats, p.opts...)
			m.e.StartCDC(t)
			seller, buyer, stranger := m.signUp("seller"), m.signUp("buyer"), m.signUp("stranger")
			listing := m.listing(seller, "Bike")

			w := m.watchOrders(t, buyer.token, "", swapmeetv1.OrderRole_ORDER_ROLE_BUYER)
			w.until(10*time.Second, "the first message", func(*swapmeetv1.WatchOrdersResponse) bool { return true })
			spy := m.watchOrders(t, stranger.token, "", swapmeetv1.OrderRole_ORDER_ROLE_UNSPECIFIED)

			order := m.order(buyer, listing)
			w.status(order, swapmeetv1.OrderStatus_ORDER_STATUS_PENDING)
			if _, err := m.orders.MarkOrderPaid(ctx, authed(&swapmeetv1.MarkOrderPaidRequest{OrderId: order}, buyer.token)); err != nil {
				t.Fatal(err)
			}
			w.status(order, swapmeetv1.OrderStatus_ORDER_STATUS_PAID)
			w.cancel() // cut off

			if _, err := m.orders.MarkOrderShipped(ctx, authed(&swapmeetv1.MarkOrderShippedRequest{OrderId: order}, seller.token)); err != nil {
				t.Fatal(err)
			}
			resumed := m.watchOrders(t, buyer.token, w.token, swapmeetv1.OrderRole_ORDER_ROLE_BUYER)
			resumed.orders = w.orders
			resumed.status(order, swapmeetv1.OrderStatus_ORDER_STATUS_SHIPPED)
			done, err := m.orders.ConfirmDelivery(ctx, authed(&swapmeetv1.ConfirmDeliveryRequest{OrderId: order}, buyer.token))
			if err != nil {
				t.Fatal(err)
			}
			resumed.status(order, swapmeetv1.OrderStatus_ORDER_STATUS_DELIVERED)

			last := 0
			for i, o := range resumed.orders {
				r := statusRank[o.Status]
				if r < last {
					t.Fatalf("message %d went back to %s: %v", i, o.Status, resumed.orders)
				}
				last = r
			}
			final := resumed.orders[len(resumed.orders)-1]
			if len(final.History) != 4 {
				t.Fatalf("the final state's history has %d steps, want all 4: %v", len(final.History), final.History)
			}

			// The stranger's stream has moved past the last write, with
			// nothing of the buyer's.
			spy.past(done.Msg.ConsistencyToken)
			if len(spy.orders) != 0 {
				t.Fatalf("a stranger received another user's orders: %v", spy.orders)
			}
		})
	}
}

// TestWatchOrdersAuthentication: anonymous callers are refused, and
// signing out ends the stream.
func TestWatchOrdersAuthentication(t *testing.T) {
	m := newMarketWith(t, fastBeats)
	m.e.StartCDC(t)
	s, err := m.orders.WatchOrders(ctx, connect.NewRequest(&swapmeetv1.WatchOrdersRequest{}))
	if err == nil {
		for s.Receive() {
			t.Fatalf("anonymous stream sent %v", s.Msg())
		}
		err = s.Err()
	}
	wantCode(t, err, connect.CodeUnauthenticated)

	buyer := m.signUp("buyer")
	w := m.watchOrders(t, buyer.token, "", swapmeetv1.OrderRole_ORDER_ROLE_UNSPECIFIED)
	w.until(10*time.Second, "the first message", func(*swapmeetv1.WatchOrdersResponse) bool { return true })
	if _, err := m.users.SignOut(ctx, authed(&swapmeetv1.SignOutRequest{}, buyer.token)); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	for {
		select {
		case r := <-w.ch:
			if r.msg != nil {
				continue // heartbeats until the session check
			}
			wantCode(t, r.err, connect.CodeUnauthenticated)
			return
		case <-deadline:
			t.Fatal("the stream outlived its session by 15 s")
		}
	}
}

// TestWatchLimits: a user's streams beyond the limit are refused, and a
// stream ends cleanly at its maximum lifetime.
func TestWatchLimits(t *testing.T) {
	m := newMarketWith(t, itest.APIOptions{Watch: func(o *live.Options) {
		o.MaxStreamsPerOwner = 2
		o.MaxLifetime = time.Second
		o.Heartbeat = 200 * time.Millisecond
	}})
	m.e.StartCDC(t)
	buyer := m.signUp("buyer")
	for range 2 {
		w := m.watchOrders(t, buyer.token, "", swapmeetv1.OrderRole_ORDER_ROLE_UNSPECIFIED)
		w.until(10*time.Second, "the first message", func(*swapmeetv1.WatchOrdersResponse) bool { return true })
	}
	s, err := m.orders.WatchOrders(ctx, authed(&swapmeetv1.WatchOrdersRequest{}, buyer.token))
	if err == nil {
		for s.Receive() {
		}
		err = s.Err()
	}
	wantCode(t, err, connect.CodeResourceExhausted)

	// Both streams end at their lifetime, cleanly; then there is room.
	w := m.watchOrders(t, m.signUp("other").token, "", swapmeetv1.OrderRole_ORDER_ROLE_UNSPECIFIED)
	deadline := time.After(15 * time.Second)
	for ended := false; !ended; {
		select {
		case r := <-w.ch:
			if r.msg == nil {
				if r.err != nil {
					t.Fatalf("the stream ended with %v, want a clean end", r.err)
				}
				ended = true
			}
		case <-deadline:
			t.Fatal("the stream outlived its 1 s lifetime by 15 s")
		}
	}
	itest.Eventually(t, 10*time.Second, "room for a new stream", func() (bool, error) {
		s, err := m.orders.WatchOrders(ctx, authed(&swapmeetv1.WatchOrdersRequest{}, buyer.token))
		if err != nil {
			return false, err
		}
		ok := s.Receive()
		s.Close()
		return ok, nil
	})
}

// TestWatchListingNeverGoesBack: a burst of updates may be coalesced, but
// the versions received never go back, and the last one arrives. (One may
// come twice: the CDC re-reads a row that a later commit already changed,
// and stamps it with its own batch's position; the later batch stamps the
// same state again, at a higher position.)
func TestWatchListingNeverGoesBack(t *testing.T) {
	m := newMarket(t)
	m.e.StartCDC(t)
	seller := m.signUp("seller")
	created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.listings.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: created.Msg.ListingId, ResumeToken: created.Msg.ConsistencyToken}))
	if err != nil {
		t.Fatal(err)
	}
	ch := receive(s)
	const updates = 30
	go func() {
		for v := int64(1); v <= updates; v++ {
			if _, err := m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{
				ListingId: created.Msg.ListingId, ExpectedVersion: v, Price: eur(1000 + v), UpdateMask: mask("price"),
			}, seller.token)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	last := int64(0)
	for last < updates+1 {
		got, err := nextListing(t, ch, 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got.Listing.Version < last {
			t.Fatalf("version %d after %d", got.Listing.Version, last)
		}
		last = got.Listing.Version
	}
	unknown, err := m.listings.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: "8e0cdd61-0d3b-4c39-9a0d-4a4b9b6a3a0e"}))
	if err == nil {
		for unknown.Receive() {
			t.Fatalf("an unknown listing's stream sent %v", unknown.Msg())
		}
		err = unknown.Err()
	}
	wantCode(t, err, connect.CodeNotFound)
}

// TestWatchOutlivesTheServerTimeouts: a stream lasts longer than the HTTP
// server's read timeout, over HTTP/1.1 (the Connect protocol) and over
// HTTP/2: the timeouts bound requests, not streams.
func TestWatchOutlivesTheServerTimeouts(t *testing.T) {
	const readTimeout = time.Second
	m := newMarketWith(t, itest.APIOptions{
		ReadTimeout: readTimeout,
		Watch:       func(o *live.Options) { o.Heartbeat = 100 * time.Millisecond },
	})
	m.e.StartCDC(t)
	seller := m.signUp("seller")
	created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	http1 := &http.Client{Transport: &http.Transport{}}
	for name, client := range map[string]*http.Client{"http1": http1, "h2c": m.srv.Client()} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			c := swapmeetv1connect.NewListingServiceClient(client, m.srv.URL)
			s, err := c.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{
				ListingId: created.Msg.ListingId, ResumeToken: created.Msg.ConsistencyToken,
			}))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			beats := 0
			for time.Since(start) < 3*readTimeout {
				if !s.Receive() {
					t.Fatalf("the stream ended after %s (%d heartbeats): %v", time.Since(start), beats, s.Err())
				}
				beats++
			}
		})
	}
}

// TestWatchOrdersResyncsBeyondTheHistory: a resume token older than the
// feed's kept history gets resync first, with a token at which ListOrders
// has everything; then the stream goes on live.
func TestWatchOrdersResyncsBeyondTheHistory(t *testing.T) {
	m := newMarketWith(t, fastBeats)
	m.e.StartCDC(t)
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	old := m.watchOrders(t, buyer.token, "", swapmeetv1.OrderRole_ORDER_ROLE_UNSPECIFIED)
	first := old.until(10*time.Second, "the first message", func(*swapmeetv1.WatchOrdersResponse) bool { return true })
	listing := m.listing(seller, "Bike")
	placed, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{listing}, IdempotencyKey: "k"}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	order := placed.Msg.OrderId
	old.past(placed.Msg.ConsistencyToken) // the API has read the order from the feed
	old.cancel()

	// The retention passes: the CDC trims everything up to now.
	if err := feed.Trim(ctx, m.e.Redis, feed.KeysFor(m.e.RedisPrefix, feed.Orders), m.e.CurrentLSN(t)); err != nil {
		t.Fatal(err)
	}

	w := m.watchOrders(t, buyer.token, first.ResumeToken, swapmeetv1.OrderRole_ORDER_ROLE_UNSPECIFIED)
	var resync *swapmeetv1.WatchOrdersResponse
	deadline := time.After(15 * time.Second)
	for resync == nil {
		select {
		case r := <-w.ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.msg.Order != nil {
				t.Fatalf("an order before the resync: %v", r.msg.Order)
			}
			if r.msg.Resync {
				resync = r.msg
			}
		case <-deadline:
			t.Fatal("no resync for a token older than the history")
		}
	}
	list, err := m.orders.ListOrders(ctx, authed(&swapmeetv1.ListOrdersRequest{Role: swapmeetv1.OrderRole_ORDER_ROLE_BUYER, ConsistencyToken: resync.ResumeToken}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.Orders) != 1 || list.Msg.Orders[0].OrderId != order {
		t.Fatalf("the refetch at the resync's token: %v", list.Msg.Orders)
	}
	// And live after it.
	if _, err := m.orders.MarkOrderPaid(ctx, authed(&swapmeetv1.MarkOrderPaidRequest{OrderId: order}, buyer.token)); err != nil {
		t.Fatal(err)
	}
	w.status(order, swapmeetv1.OrderStatus_ORDER_STATUS_PAID)
}
