package rpc_test

import (
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// market is a running API with clients for every service.
type market struct {
	t        *testing.T
	e        *itest.Env
	srv      *httptest.Server
	app      *app.App
	users    swapmeetv1connect.UserServiceClient
	listings swapmeetv1connect.ListingServiceClient
	orders   swapmeetv1connect.OrderServiceClient
	reviews  swapmeetv1connect.ReviewServiceClient
}

func newMarket(t *testing.T, opts ...connect.ClientOption) *market {
	return newMarketWith(t, itest.APIOptions{}, opts...)
}

// newMarketWith is newMarket on an API started with o.
func newMarketWith(t *testing.T, o itest.APIOptions, opts ...connect.ClientOption) *market {
	e := itest.New(t)
	srv, a := e.StartAPIWith(t, o)
	return clientsOf(t, e, srv, a, opts)
}

// clientsOf is a market of clients for every service of the API at srv.
func clientsOf(t *testing.T, e *itest.Env, srv *httptest.Server, a *app.App, opts []connect.ClientOption) *market {
	return &market{
		t: t, e: e, srv: srv, app: a,
		users:    swapmeetv1connect.NewUserServiceClient(srv.Client(), srv.URL, opts...),
		listings: swapmeetv1connect.NewListingServiceClient(srv.Client(), srv.URL, opts...),
		orders:   swapmeetv1connect.NewOrderServiceClient(srv.Client(), srv.URL, opts...),
		reviews:  swapmeetv1connect.NewReviewServiceClient(srv.Client(), srv.URL, opts...),
	}
}

// user is a signed-up account with its session token.
type user struct {
	id, token string
}

var userSeq atomic.Int64

func (m *market) signUp(name string) user {
	m.t.Helper()
	n := userSeq.Add(1)
	res, err := m.users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{
		Email: fmt.Sprintf("%s-%d@example.com", name, n), Password: "correct horse", DisplayName: name,
	}))
	if err != nil {
		m.t.Fatal(err)
	}
	return user{id: res.Msg.UserId, token: res.Msg.SessionToken}
}

func eur(minor int64) *swapmeetv1.Money {
	return &swapmeetv1.Money{CurrencyCode: "EUR", AmountMinor: minor}
}

func validListing(title string) *swapmeetv1.CreateListingRequest {
	return &swapmeetv1.CreateListingRequest{
		Title: title, Description: "Works fine.", Category: "electronics",
		Condition: swapmeetv1.Condition_CONDITION_GOOD, Price: eur(2500),
		Attributes: map[string]string{"brand": "Acme", "screen_size": "13in"},
	}
}

// listing creates a listing for seller and returns its id.
func (m *market) listing(seller user, title string) string {
	m.t.Helper()
	res, err := m.listings.CreateListing(ctx, authed(validListing(title), seller.token))
	if err != nil {
		m.t.Fatal(err)
	}
	return res.Msg.ListingId
}

var keySeq atomic.Int64

// order places an order for buyer and returns its id.
func (m *market) order(buyer user, listingIDs ...string) string {
	m.t.Helper()
	res, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{
		ListingIds: listingIDs, IdempotencyKey: fmt.Sprint("key-", keySeq.Add(1)),
	}, buyer.token))
	if err != nil {
		m.t.Fatal(err)
	}
	return res.Msg.OrderId
}

// status reads an order's status straight from Postgres.
func (m *market) orderStatus(orderID string) string {
	m.t.Helper()
	var s string
	if err := m.e.PG.QueryRow(ctx, `SELECT status FROM orders WHERE id = $1`, orderID).Scan(&s); err != nil {
		m.t.Fatal(err)
	}
	return s
}

func (m *market) listingStatus(listingID string) (status string, version int64) {
	m.t.Helper()
	if err := m.e.PG.QueryRow(ctx, `SELECT status, version FROM listings WHERE id = $1`, listingID).Scan(&status, &version); err != nil {
		m.t.Fatal(err)
	}
	return status, version
}

// setOrderStatus jumps an order to a state, for testing each transition from it.
func (m *market) setOrderStatus(orderID, status string) {
	m.t.Helper()
	if _, err := m.e.PG.Exec(ctx, `UPDATE orders SET status = $2 WHERE id = $1`, orderID, status); err != nil {
		m.t.Fatal(err)
	}
}

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
