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

// raceN runs fn from n goroutines at once and returns their results.
func raceN[T any](n int, fn func() (T, error)) ([]T, []error) {
	out, errs := make([]T, n), make([]error, n)
	start := make(chan struct{})
	done := make(chan int)
	for i := range n {
		go func() {
			<-start
			out[i], errs[i] = fn()
			done <- i
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return out, errs
}

// TestCreatesAreIdempotent: CreateListing and CreateMediaUpload retried
// with one idempotency key from 8 goroutines at once make one listing and
// one upload, and every retry answers with it; the same key with another
// request is refused with IDEMPOTENCY_KEY_REUSED.
func TestCreatesAreIdempotent(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			m := newMarket(t, p.opts...)
			seller := m.signUp("seller")
			req := validListing("Lamp")
			req.IdempotencyKey = "create-lamp-1"
			created, errs := raceN(8, func() (string, error) {
				res, err := m.listings.CreateListing(ctx, authed(req, seller.token))
				if err != nil {
					return "", err
				}
				return res.Msg.ListingId, nil
			})
			for i, err := range errs {
				if err != nil || created[i] != created[0] {
					t.Fatalf("retry %d: %q, %v; want listing %s", i, created[i], err, created[0])
				}
			}
			var n int
			if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM listings WHERE seller_id = $1`, seller.id).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d listings after 8 retries, %v", n, err)
			}
			other := validListing("Lamp, cheaper")
			other.IdempotencyKey = req.IdempotencyKey
			_, err := m.listings.CreateListing(ctx, authed(other, seller.token))
			wantReason(t, "the key again with other fields", err, connect.CodeFailedPrecondition, app.ReasonIdempotencyKeyReused)

			up := &swapmeetv1.CreateMediaUploadRequest{ListingId: created[0], ContentType: "image/png", SizeBytes: 2048, IdempotencyKey: "photo-1"}
			media, errs := raceN(8, func() (string, error) {
				res, err := m.listings.CreateMediaUpload(ctx, authed(up, seller.token))
				if err != nil {
					return "", err
				}
				if res.Msg.UploadUrl == "" || len(res.Msg.FormFields) == 0 {
					return "", errors.New("no policy")
				}
				return res.Msg.MediaId, nil
			})
			for i, err := range errs {
				if err != nil || media[i] != media[0] {
					t.Fatalf("upload retry %d: %q, %v; want media %s", i, media[i], err, media[0])
				}
			}
			if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM listing_media WHERE listing_id = $1`, created[0]).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d uploads after 8 retries, %v", n, err)
			}
			bigger := &swapmeetv1.CreateMediaUploadRequest{ListingId: created[0], ContentType: "image/png", SizeBytes: 4096, IdempotencyKey: "photo-1"}
			_, err = m.listings.CreateMediaUpload(ctx, authed(bigger, seller.token))
			wantReason(t, "the upload key again with another size", err, connect.CodeFailedPrecondition, app.ReasonIdempotencyKeyReused)
		})
	}
}
