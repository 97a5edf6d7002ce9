package rpc_test

import (
	"errors"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/rpc"
)

// reasonOf is the reason of err's google.rpc.ErrorInfo, "" without one.
func reasonOf(t *testing.T, err error) string {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			t.Fatalf("a detail that does not decode: %v", derr)
		}
		if info, ok := v.(*errdetails.ErrorInfo); ok {
			if info.Domain != rpc.ReasonDomain {
				t.Fatalf("ErrorInfo of domain %q, want %q", info.Domain, rpc.ReasonDomain)
			}
			return info.Reason
		}
	}
	return ""
}

func wantReason(t *testing.T, what string, err error, code connect.Code, reason app.Reason) {
	t.Helper()
	if connect.CodeOf(err) != code || reasonOf(t, err) != string(reason) {
		t.Fatalf("%s: %v (reason %q), want %s with reason %s", what, err, reasonOf(t, err), code, reason)
	}
}

// TestRefusalsNameTheirReason: each refusal a client is expected to act
// on carries its reason in a google.rpc.ErrorInfo, through the Connect
// and the gRPC protocols alike. The tests read the reason, never the
// message.
func TestRefusalsNameTheirReason(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			m := newLiveMarket(t, p.opts...)
			seller, buyer, other := m.signUp("seller"), m.signUp("buyer"), m.signUp("other")
			lamp := m.listing(seller, "Lamp")
			m.order(buyer, lamp)
			_, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{lamp}, IdempotencyKey: "late"}, other.token))
			wantReason(t, "buying a sold listing", err, connect.CodeFailedPrecondition, app.ReasonListingSold)

			desk := m.listing(seller, "Desk")
			_, err = m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{desk}, IdempotencyKey: "own"}, seller.token))
			wantReason(t, "buying one's own listing", err, connect.CodeFailedPrecondition, app.ReasonOwnListing)

			dollars := validListing("Chair")
			dollars.Price = &swapmeetv1.Money{CurrencyCode: "USD", AmountMinor: 900}
			chair, err := m.listings.CreateListing(ctx, authed(dollars, seller.token))
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{desk, chair.Msg.ListingId}, IdempotencyKey: "mixed"}, buyer.token))
			wantReason(t, "an order in two currencies", err, connect.CodeFailedPrecondition, app.ReasonCurrencyMismatch)

			placed := m.order(buyer, desk)
			_, err = m.orders.MarkOrderShipped(ctx, authed(&swapmeetv1.MarkOrderShippedRequest{OrderId: placed}, seller.token))
			wantReason(t, "shipping an unpaid order", err, connect.CodeFailedPrecondition, app.ReasonOrderNotInState)

			_, err = m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{
				ListingId: chair.Msg.ListingId, ExpectedVersion: 7, Title: "Oak chair", UpdateMask: mask("title")}, seller.token))
			wantReason(t, "a stale expected_version", err, connect.CodeAborted, app.ReasonVersionConflict)
		})
	}
}

// TestLimitsNameTheirReason: a token the read side does not reach in
// time, a rate limit and a quota, each with its reason.
func TestLimitsNameTheirReason(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			// No CDC: no token is ever reached.
			m := newMarketWith(t, itest.APIOptions{Limits: app.Limits{ListingsPerDay: 1, WritesPerClient: 4}}, p.opts...)
			seller := m.signUp("seller")
			created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: created.Msg.ListingId, ConsistencyToken: created.Msg.ConsistencyToken}))
			wantReason(t, "a token not reached in time", err, connect.CodeUnavailable, app.ReasonConsistencyTimeout)

			_, err = m.listings.CreateListing(ctx, authed(validListing("Desk"), seller.token))
			wantReason(t, "a second listing in a day, with a quota of 1", err, connect.CodeResourceExhausted, app.ReasonQuotaExceeded)

			for i := 0; ; i++ {
				_, err = m.listings.CreateListing(ctx, authed(validListing("Chair"), seller.token))
				if app.Reason(reasonOf(t, err)) != app.ReasonQuotaExceeded || i > 10 {
					break
				}
			}
			wantReason(t, "writes past the per-client limit", err, connect.CodeResourceExhausted, app.ReasonRateLimited)
		})
	}
}
