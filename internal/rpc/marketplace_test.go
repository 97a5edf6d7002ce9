package rpc_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
)

// TestAuthorizationMatrix calls every write RPC as an anonymous caller,
// as a user with no business with the resource, as the wrong party where
// there is one, and as the owner or the right party.
func TestAuthorizationMatrix(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			m := newMarket(t, p.opts...)
			seller, buyer, stranger := m.signUp("seller"), m.signUp("buyer"), m.signUp("stranger")
			toUpdate := m.listing(seller, "Lamp")
			toWithdraw := m.listing(seller, "Chair")
			toBuy := m.listing(seller, "Desk")
			flow := m.order(buyer, m.listing(seller, "Radio")) // walks PENDING → DELIVERED
			cancelByBuyer := m.order(buyer, m.listing(seller, "Kettle"))
			cancelBySeller := m.order(buyer, m.listing(seller, "Clock"))
			none := user{}

			const (
				unauth  = connect.CodeUnauthenticated
				denied  = connect.CodePermissionDenied
				missing = connect.CodeNotFound
				refused = connect.CodeFailedPrecondition
				ok      = connect.Code(0)
			)
			type call struct {
				as   user
				want connect.Code
			}
			for _, rpc := range []struct {
				name  string
				do    func(u user) error
				calls []call // in order: refusals first, then the one that succeeds
			}{
				{"CreateListing", func(u user) error {
					_, err := m.listings.CreateListing(ctx, authed(validListing("Vase"), u.token))
					return err
				}, []call{{none, unauth}, {stranger, ok}}},
				{"UpdateListing", func(u user) error {
					_, err := m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{
						ListingId: toUpdate, ExpectedVersion: 1, Title: "Brass lamp", UpdateMask: mask("title")}, u.token))
					return err
				}, []call{{none, unauth}, {stranger, denied}, {buyer, denied}, {seller, ok}}},
				{"WithdrawListing", func(u user) error {
					_, err := m.listings.WithdrawListing(ctx, authed(&swapmeetv1.WithdrawListingRequest{ListingId: toWithdraw, ExpectedVersion: 1}, u.token))
					return err
				}, []call{{none, unauth}, {stranger, denied}, {seller, ok}}},
				{"PlaceOrder", func(u user) error {
					_, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{toBuy}, IdempotencyKey: "k-" + u.id}, u.token))
					return err
				}, []call{{none, unauth}, {seller, refused}, {stranger, ok}}},
				{"MarkOrderPaid", func(u user) error {
					_, err := m.orders.MarkOrderPaid(ctx, authed(&swapmeetv1.MarkOrderPaidRequest{OrderId: flow}, u.token))
					return err
				}, []call{{none, unauth}, {stranger, missing}, {seller, denied}, {buyer, ok}}},
				{"MarkOrderShipped", func(u user) error {
					_, err := m.orders.MarkOrderShipped(ctx, authed(&swapmeetv1.MarkOrderShippedRequest{OrderId: flow}, u.token))
					return err
				}, []call{{none, unauth}, {stranger, missing}, {buyer, denied}, {seller, ok}}},
				{"ConfirmDelivery", func(u user) error {
					_, err := m.orders.ConfirmDelivery(ctx, authed(&swapmeetv1.ConfirmDeliveryRequest{OrderId: flow}, u.token))
					return err
				}, []call{{none, unauth}, {stranger, missing}, {seller, denied}, {buyer, ok}}},
				{"CancelOrder by buyer", func(u user) error {
					_, err := m.orders.CancelOrder(ctx, authed(&swapmeetv1.CancelOrderRequest{OrderId: cancelByBuyer}, u.token))
					return err
				}, []call{{none, unauth}, {stranger, missing}, {buyer, ok}}},
				{"CancelOrder by seller", func(u user) error {
					_, err := m.orders.CancelOrder(ctx, authed(&swapmeetv1.CancelOrderRequest{OrderId: cancelBySeller}, u.token))
					return err
				}, []call{{none, unauth}, {stranger, missing}, {seller, ok}}},
				{"CreateReview", func(u user) error {
					_, err := m.reviews.CreateReview(ctx, authed(&swapmeetv1.CreateReviewRequest{OrderId: flow, Rating: 5, Comment: "Great"}, u.token))
					return err
				}, []call{{none, unauth}, {stranger, missing}, {seller, denied}, {buyer, ok}}},
				{"UpdateProfile", func(u user) error {
					name := "New name"
					_, err := m.users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, u.token))
					return err
				}, []call{{none, unauth}, {stranger, ok}}},
				{"SignOut", func(u user) error {
					_, err := m.users.SignOut(ctx, authed(&swapmeetv1.SignOutRequest{}, u.token))
					return err
				}, []call{{none, unauth}, {stranger, ok}}},
			} {
				for _, c := range rpc.calls {
					err := rpc.do(c.as)
					if got := connect.CodeOf(err); (c.want == ok && err != nil) || (c.want != ok && got != c.want) {
						t.Errorf("%s as %s: got %v, want %v", rpc.name, who(c.as, seller, buyer, stranger), err, c.want)
					}
				}
			}
		})
	}
}

func who(u, seller, buyer, stranger user) string {
	switch u {
	case user{}:
		return "anonymous"
	case seller:
		return "seller"
	case buyer:
		return "buyer"
	case stranger:
		return "stranger"
	}
	return "someone"
}

// TestPlaceOrderRaceHasOneWinner races 64 buyers for one listing.
func TestPlaceOrderRaceHasOneWinner(t *testing.T) {
	m := newMarket(t)
	seller := m.signUp("seller")
	listing := m.listing(seller, "Last one")
	buyers := make([]user, 64)
	for i := range buyers {
		buyers[i] = m.signUp("buyer")
	}
	start := make(chan struct{})
	codes := make([]connect.Code, len(buyers))
	var wg sync.WaitGroup
	for i, b := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{listing}, IdempotencyKey: "race"}, b.token))
			codes[i] = connect.CodeOf(err)
			if err == nil {
				codes[i] = 0
			}
		}()
	}
	close(start)
	wg.Wait()
	winners := 0
	for i, c := range codes {
		switch c {
		case 0:
			winners++
		case connect.CodeFailedPrecondition:
		default:
			t.Errorf("buyer %d got %v, want FailedPrecondition", i, c)
		}
	}
	if winners != 1 {
		t.Fatalf("%d winners, want exactly 1", winners)
	}
	var orders int
	if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM order_items WHERE listing_id = $1`, listing).Scan(&orders); err != nil || orders != 1 {
		t.Fatalf("orders holding the listing = %d, %v; want 1", orders, err)
	}
}

// TestCancelRacesShip: a buyer cancelling and a seller shipping the same
// PAID order at once end in exactly one of the two states.
func TestCancelRacesShip(t *testing.T) {
	m := newMarket(t)
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	for round := 0; round < 20; round++ {
		listing := m.listing(seller, fmt.Sprint("Item ", round))
		order := m.order(buyer, listing)
		m.setOrderStatus(order, "PAID")
		start := make(chan struct{})
		var cancelErr, shipErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, cancelErr = m.orders.CancelOrder(ctx, authed(&swapmeetv1.CancelOrderRequest{OrderId: order}, buyer.token))
		}()
		go func() {
			defer wg.Done()
			<-start
			_, shipErr = m.orders.MarkOrderShipped(ctx, authed(&swapmeetv1.MarkOrderShippedRequest{OrderId: order}, seller.token))
		}()
		close(start)
		wg.Wait()
		status := m.orderStatus(order)
		listingStatus, _ := m.listingStatus(listing)
		switch {
		case cancelErr == nil && shipErr != nil:
			if status != "CANCELLED" || listingStatus != "AVAILABLE" || connect.CodeOf(shipErr) != connect.CodeFailedPrecondition {
				t.Fatalf("cancel won but order %s, listing %s, ship error %v", status, listingStatus, shipErr)
			}
		case shipErr == nil && cancelErr != nil:
			if status != "SHIPPED" || listingStatus != "SOLD" || connect.CodeOf(cancelErr) != connect.CodeFailedPrecondition {
				t.Fatalf("ship won but order %s, listing %s, cancel error %v", status, listingStatus, cancelErr)
			}
		default:
			t.Fatalf("round %d: cancel error %v, ship error %v: exactly one must win", round, cancelErr, shipErr)
		}
	}
}

func TestPlaceOrderIsIdempotent(t *testing.T) {
	m := newMarket(t)
	seller, buyer, other := m.signUp("seller"), m.signUp("buyer"), m.signUp("other")
	a, b := m.listing(seller, "A"), m.listing(seller, "B")
	req := func(u user, key string, ids ...string) (*swapmeetv1.PlaceOrderResponse, error) {
		res, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: ids, IdempotencyKey: key}, u.token))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	first, err := req(buyer, "cart-1", a, b)
	if err != nil {
		t.Fatal(err)
	}
	if first.Total.AmountMinor != 5000 || first.Total.CurrencyCode != "EUR" {
		t.Fatalf("total = %v, want EUR 5000", first.Total)
	}
	again, err := req(buyer, "cart-1", b, a) // same set, other order
	if err != nil || again.OrderId != first.OrderId || again.Total.AmountMinor != 5000 {
		t.Fatalf("replay = %v, %v; want order %s", again, err, first.OrderId)
	}
	_, err = req(buyer, "cart-1", a)
	wantCode(t, err, connect.CodeFailedPrecondition) // same key, other listings
	// The key belongs to the buyer: another buyer's "cart-1" is a new order (and fails: sold).
	_, err = req(other, "cart-1", a)
	wantCode(t, err, connect.CodeFailedPrecondition)

	// Racing duplicates: all get the one order.
	c := m.listing(seller, "C")
	ids := make([]string, 8)
	errs := make([]error, 8)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := req(buyer, "cart-2", c)
			errs[i] = err
			if err == nil {
				ids[i] = res.OrderId
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("racing replay %d: order %q, %v; want %q", i, ids[i], errs[i], ids[0])
		}
	}
	var n int
	if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM orders WHERE buyer_id = $1 AND idempotency_key = 'cart-2'`, buyer.id).Scan(&n); err != nil || n != 1 {
		t.Fatalf("orders for cart-2 = %d, %v; want 1", n, err)
	}
}

func TestPlaceOrderRules(t *testing.T) {
	m := newMarket(t)
	seller, seller2, buyer := m.signUp("seller"), m.signUp("seller2"), m.signUp("buyer")
	a, b, other := m.listing(seller, "A"), m.listing(seller, "B"), m.listing(seller2, "X")
	usd, err := m.listings.CreateListing(ctx, authed(&swapmeetv1.CreateListingRequest{
		Title: "Priced in dollars", Category: "misc", Condition: swapmeetv1.Condition_CONDITION_NEW, Price: &swapmeetv1.Money{CurrencyCode: "USD", AmountMinor: 100},
	}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	withdrawn := m.listing(seller, "Gone")
	if _, err := m.listings.WithdrawListing(ctx, authed(&swapmeetv1.WithdrawListingRequest{ListingId: withdrawn, ExpectedVersion: 1}, seller.token)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ids  []string
		key  string
		want connect.Code
	}{
		{"two sellers", []string{a, other}, "k1", connect.CodeFailedPrecondition},
		{"two currencies", []string{a, usd.Msg.ListingId}, "k2", connect.CodeFailedPrecondition},
		{"withdrawn", []string{withdrawn}, "k3", connect.CodeFailedPrecondition},
		{"unknown listing", []string{"0190a0b0-0000-7000-8000-000000000000"}, "k4", connect.CodeNotFound},
		{"duplicate id", []string{a, a}, "k5", connect.CodeInvalidArgument},
		{"no listings", nil, "k6", connect.CodeInvalidArgument},
		{"no key", []string{a}, "", connect.CodeInvalidArgument},
		{"bad id", []string{"x"}, "k7", connect.CodeInvalidArgument},
		{"too many", strings.Split(strings.Repeat(a+",", 51)[:37*51-1], ","), "k8", connect.CodeInvalidArgument},
	} {
		_, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: tc.ids, IdempotencyKey: tc.key}, buyer.token))
		if connect.CodeOf(err) != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// Nothing above changed anything.
	for _, id := range []string{a, b, other} {
		if s, v := m.listingStatus(id); s != "AVAILABLE" || v != 1 {
			t.Errorf("listing %s is %s v%d after refused orders", id, s, v)
		}
	}
	order := m.order(buyer, a, b)
	for _, id := range []string{a, b} {
		if s, v := m.listingStatus(id); s != "SOLD" || v != 2 {
			t.Errorf("bought listing is %s v%d, want SOLD v2", s, v)
		}
	}
	if _, err := m.orders.CancelOrder(ctx, authed(&swapmeetv1.CancelOrderRequest{OrderId: order}, buyer.token)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a, b} {
		if s, _ := m.listingStatus(id); s != "AVAILABLE" {
			t.Errorf("after cancelling, listing is %s, want AVAILABLE", s)
		}
	}
}

// TestOrderTransitions tries every transition from every state: a
// transition to the state the order is already in succeeds again without
// a change (a retry whose answer was lost), any other the state does not
// allow is refused with ORDER_NOT_IN_STATE.
func TestOrderTransitions(t *testing.T) {
	m := newMarket(t)
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	type transition struct {
		name string
		as   user
		do   func(orderID string, u user) error
		from map[string]string // state → state after; absent states refuse
	}
	transitions := []transition{
		{"MarkOrderPaid", buyer, func(o string, u user) error {
			_, err := m.orders.MarkOrderPaid(ctx, authed(&swapmeetv1.MarkOrderPaidRequest{OrderId: o}, u.token))
			return err
		}, map[string]string{"PENDING": "PAID", "PAID": "PAID"}},
		{"MarkOrderShipped", seller, func(o string, u user) error {
			_, err := m.orders.MarkOrderShipped(ctx, authed(&swapmeetv1.MarkOrderShippedRequest{OrderId: o}, u.token))
			return err
		}, map[string]string{"PAID": "SHIPPED", "SHIPPED": "SHIPPED"}},
		{"ConfirmDelivery", buyer, func(o string, u user) error {
			_, err := m.orders.ConfirmDelivery(ctx, authed(&swapmeetv1.ConfirmDeliveryRequest{OrderId: o}, u.token))
			return err
		}, map[string]string{"SHIPPED": "DELIVERED", "DELIVERED": "DELIVERED"}},
		{"CancelOrder", buyer, func(o string, u user) error {
			_, err := m.orders.CancelOrder(ctx, authed(&swapmeetv1.CancelOrderRequest{OrderId: o}, u.token))
			return err
		}, map[string]string{"PENDING": "CANCELLED", "PAID": "CANCELLED", "CANCELLED": "CANCELLED"}},
	}
	for _, tr := range transitions {
		for _, state := range []string{"PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"} {
			t.Run(tr.name+"/from "+state, func(t *testing.T) {
				order := m.order(buyer, m.listing(seller, "Item"))
				m.setOrderStatus(order, state)
				err := tr.do(order, tr.as)
				want, allowed := tr.from[state]
				if !allowed {
					wantReason(t, tr.name+" from "+state, err, connect.CodeFailedPrecondition, app.ReasonOrderNotInState)
					want = state
				} else if err != nil {
					t.Fatalf("%s from %s: %v", tr.name, state, err)
				}
				if got := m.orderStatus(order); got != want {
					t.Fatalf("status = %s, want %s", got, want)
				}
			})
		}
	}
}

// TestRetriedTransitionsRace: a buyer's client retries MarkOrderPaid from
// 8 goroutines at once (a lost answer, retried eagerly). Every one
// succeeds, the order is paid once, and every answer's token reads the
// order PAID; then a conflicting transition (ConfirmDelivery of an
// unshipped order) still fails.
func TestRetriedTransitionsRace(t *testing.T) {
	m := newLiveMarket(t)
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	order := m.order(buyer, m.listing(seller, "Item"))
	const n = 8
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := m.orders.MarkOrderPaid(ctx, authed(&swapmeetv1.MarkOrderPaidRequest{OrderId: order}, buyer.token))
			if err == nil {
				tokens[i] = res.Msg.ConsistencyToken
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("retry %d: %v; every retry of a transition already taken succeeds", i, errs[i])
		}
		// Each token is at or after the paying commit: a read with it
		// sees the order paid.
		res, err := m.orders.GetOrder(ctx, authed(&swapmeetv1.GetOrderRequest{OrderId: order, ConsistencyToken: tokens[i]}, buyer.token))
		if err != nil || res.Msg.Order.Status != swapmeetv1.OrderStatus_ORDER_STATUS_PAID {
			t.Fatalf("GetOrder with retry %d's token: %v, %v; want PAID", i, res, err)
		}
	}
	var paid int
	if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM orders WHERE id = $1 AND status = 'PAID' AND paid_at IS NOT NULL`, order).Scan(&paid); err != nil || paid != 1 {
		t.Fatalf("paid orders: %d, %v", paid, err)
	}
	_, err := m.orders.ConfirmDelivery(ctx, authed(&swapmeetv1.ConfirmDeliveryRequest{OrderId: order}, buyer.token))
	wantReason(t, "confirming an unshipped order", err, connect.CodeFailedPrecondition, app.ReasonOrderNotInState)
}

func TestReviewRules(t *testing.T) {
	m := newMarket(t)
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	order := m.order(buyer, m.listing(seller, "Item"))
	review := func(o string, rating int32, comment string) error {
		_, err := m.reviews.CreateReview(ctx, authed(&swapmeetv1.CreateReviewRequest{OrderId: o, Rating: rating, Comment: comment}, buyer.token))
		return err
	}
	for _, state := range []string{"PENDING", "PAID", "SHIPPED", "CANCELLED"} {
		m.setOrderStatus(order, state)
		wantCode(t, review(order, 5, ""), connect.CodeFailedPrecondition)
	}
	m.setOrderStatus(order, "DELIVERED")
	for _, tc := range []struct {
		rating  int32
		comment string
	}{{0, ""}, {6, ""}, {-1, ""}, {5, strings.Repeat("x", 2001)}} {
		wantCode(t, review(order, tc.rating, tc.comment), connect.CodeInvalidArgument)
	}
	if err := review(order, 4, "Quick and friendly.\nWould buy again."); err != nil {
		t.Fatal(err)
	}
	wantCode(t, review(order, 5, "Once more"), connect.CodeAlreadyExists)
	var sellerID, rating string
	if err := m.e.PG.QueryRow(ctx, `SELECT seller_id::text, rating::text FROM reviews WHERE order_id = $1`, order).Scan(&sellerID, &rating); err != nil {
		t.Fatal(err)
	}
	if sellerID != seller.id || rating != "4" {
		t.Fatalf("review of %s rated %s, want of seller %s rated 4", sellerID, rating, seller.id)
	}
}

func TestListingVersionsAndRules(t *testing.T) {
	m := newMarket(t)
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	id := m.listing(seller, "Bike")
	update := func(version int64, req *swapmeetv1.UpdateListingRequest) (*swapmeetv1.UpdateListingResponse, error) {
		req.ListingId, req.ExpectedVersion = id, version
		res, err := m.listings.UpdateListing(ctx, authed(req, seller.token))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	res, err := update(1, &swapmeetv1.UpdateListingRequest{Price: eur(1999), Title: "ignored: not in the mask", UpdateMask: mask("price")})
	if err != nil || res.Version != 2 {
		t.Fatalf("update = %v, %v; want version 2", res, err)
	}
	var title string
	var price int64
	if err := m.e.PG.QueryRow(ctx, `SELECT title, price_minor FROM listings WHERE id = $1`, id).Scan(&title, &price); err != nil || title != "Bike" || price != 1999 {
		t.Fatalf("after update: %q %d %v", title, price, err)
	}
	_, err = update(1, &swapmeetv1.UpdateListingRequest{Title: "Stale", UpdateMask: mask("title")})
	wantCode(t, err, connect.CodeAborted)
	_, err = update(2, &swapmeetv1.UpdateListingRequest{Title: "x", UpdateMask: mask("title", "owner")})
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = update(2, &swapmeetv1.UpdateListingRequest{Title: "x"})
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = update(2, &swapmeetv1.UpdateListingRequest{Attributes: map[string]string{"$where": "1"}, UpdateMask: mask("attributes")})
	wantCode(t, err, connect.CodeInvalidArgument)
	if _, v := m.listingStatus(id); v != 2 {
		t.Fatalf("refused updates changed the version to %d", v)
	}
	m.order(buyer, id)
	_, err = update(3, &swapmeetv1.UpdateListingRequest{Title: "Sold bike", UpdateMask: mask("title")})
	wantCode(t, err, connect.CodeFailedPrecondition)
	_, err = m.listings.WithdrawListing(ctx, authed(&swapmeetv1.WithdrawListingRequest{ListingId: id, ExpectedVersion: 3}, seller.token))
	wantCode(t, err, connect.CodeFailedPrecondition)
}

func TestCreateListingValidation(t *testing.T) {
	m := newMarket(t)
	seller := m.signUp("seller")
	for _, tc := range []struct {
		name   string
		mutate func(*swapmeetv1.CreateListingRequest)
		field  string
	}{
		{"empty title", func(r *swapmeetv1.CreateListingRequest) { r.Title = " " }, "title"},
		{"long title", func(r *swapmeetv1.CreateListingRequest) { r.Title = strings.Repeat("t", 141) }, "title"},
		{"bad category", func(r *swapmeetv1.CreateListingRequest) { r.Category = "Board Games" }, "category"},
		{"no condition", func(r *swapmeetv1.CreateListingRequest) { r.Condition = 0 }, "condition"},
		{"no price", func(r *swapmeetv1.CreateListingRequest) { r.Price = nil }, "price"},
		{"zero price", func(r *swapmeetv1.CreateListingRequest) { r.Price = eur(0) }, "price.amount_minor"},
		{"bad currency", func(r *swapmeetv1.CreateListingRequest) { r.Price.CurrencyCode = "eur" }, "price.currency_code"},
		{"dollar key", func(r *swapmeetv1.CreateListingRequest) { r.Attributes = map[string]string{"$gt": "1"} }, "attributes"},
		{"dotted key", func(r *swapmeetv1.CreateListingRequest) { r.Attributes = map[string]string{"a.b": "1"} }, "attributes"},
		{"empty value", func(r *swapmeetv1.CreateListingRequest) { r.Attributes = map[string]string{"a": ""} }, "attributes[a]"},
		{"too many attributes", func(r *swapmeetv1.CreateListingRequest) {
			r.Attributes = map[string]string{}
			for i := 0; i < 33; i++ {
				r.Attributes[fmt.Sprint("k", i)] = "v"
			}
		}, "attributes"},
		{"control char", func(r *swapmeetv1.CreateListingRequest) { r.Description = "a\x00b" }, "description"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := validListing("Valid")
			tc.mutate(req)
			_, err := m.listings.CreateListing(ctx, authed(req, seller.token))
			wantCode(t, err, connect.CodeInvalidArgument)
			if f := fieldViolations(err); len(f) == 0 || f[0] != tc.field {
				t.Fatalf("field violations = %v, want %s first", f, tc.field)
			}
		})
	}
	var n int
	if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM listings`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("listings after refused creates = %d, %v", n, err)
	}
}
