package rpc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

func newLiveMarket(t *testing.T, opts ...connect.ClientOption) *market {
	m := newMarket(t, opts...)
	m.e.StartCDC(t)
	return m
}

// TestStaleFillCannotPersist replays the classic cache race step by step:
// a reader reads the old document and is paused; the CDC applies the new
// version and evicts the key; the reader resumes and tries to fill the
// cache with what it read. The fill must be refused, and the cache must
// never serve the old document afterwards. The test plays the paused
// reader with the same two calls the read path makes (FindRaw, Fill).
func TestStaleFillCannotPersist(t *testing.T) {
	m := newLiveMarket(t)
	seller := m.signUp("seller")
	created, err := m.listings.CreateListing(ctx, authed(validListing("Old title"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	id := created.Msg.ListingId
	if _, err := m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id, ConsistencyToken: created.Msg.ConsistencyToken})); err != nil {
		t.Fatal(err)
	}
	c := m.e.Cache()
	key := c.ListingKey(id)
	if err := m.e.Redis.Del(ctx, key).Err(); err != nil { // a cold key, as after a TTL
		t.Fatal(err)
	}

	// 1. The reader misses and reads the old document, then pauses.
	old, err := m.e.Reads.FindRaw(ctx, readstore.Listings, id)
	if err != nil {
		t.Fatal(err)
	}
	// 2. Meanwhile the listing changes and the CDC applies it.
	upd, err := m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{ListingId: id, ExpectedVersion: 1, Title: "New title", UpdateMask: mask("title")}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	lsn, err := parseToken(upd.Msg.ConsistencyToken)
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, m, lsn)
	// 3. The reader resumes and fills with what it read.
	stored, err := c.Fill(ctx, key, readstore.LSNOf(old), old)
	if err != nil {
		t.Fatal(err)
	}
	if stored {
		t.Fatal("a fill with a document older than the tombstone was stored")
	}
	// Afterwards, reads with the update's token see the new version, from
	// the store and then from the cache. (The token is what makes the API
	// wait for its own near cache to drop the key: the watcher above is the
	// test's, and a read without a token may be served from the API's near
	// cache until its own watcher hears the announcement.)
	for i := 0; i < 3; i++ {
		got, err := m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id, ConsistencyToken: upd.Msg.ConsistencyToken}))
		if err != nil || got.Msg.Listing.Title != "New title" {
			t.Fatalf("read %d after the race: %v, %v", i, got.Msg.GetListing().GetTitle(), err)
		}
	}
	if payload, hit, _ := c.Get(ctx, key); !hit || !strings.Contains(string(payload), "New title") {
		t.Fatalf("cache holds %q (hit %v), want the new document", payload, hit)
	}
	// A late fill of the old document over the new value is refused too.
	if stored, _ := c.Fill(ctx, key, readstore.LSNOf(old), old); stored {
		t.Fatal("an old document replaced a newer cached one")
	}
}

// waitApplied waits until the CDC announces that it has applied lsn.
func waitApplied(t *testing.T, m *market, lsn uint64) {
	t.Helper()
	w := cache.NewWatcher(m.e.Redis, cache.AppliedKeysFor(m.e.RedisPrefix), m.e.Log)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	go w.Run(wctx)
	if err := w.Wait(wctx, lsn); err != nil {
		t.Fatal(err)
	}
}

func TestConsistencyTokensOnListings(t *testing.T) {
	m := newLiveMarket(t)
	seller := m.signUp("seller")
	for i := 0; i < 20; i++ {
		res, err := m.listings.CreateListing(ctx, authed(validListing(fmt.Sprint("Fresh ", i)), seller.token))
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: res.Msg.ListingId, ConsistencyToken: res.Msg.ConsistencyToken}))
		if err != nil || got.Msg.Listing.Title != fmt.Sprint("Fresh ", i) {
			t.Fatalf("GetListing with the create token: %v, %v", got, err)
		}
	}
	res, err := m.listings.CreateListing(ctx, authed(validListing("Rename me"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	// Fill the cache with the old seller name first.
	if _, err := m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: res.Msg.ListingId, ConsistencyToken: res.Msg.ConsistencyToken})); err != nil {
		t.Fatal(err)
	}
	name := "Brand New Name"
	upd, err := m.users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: res.Msg.ListingId, ConsistencyToken: upd.Msg.ConsistencyToken}))
	if err != nil || got.Msg.Listing.Seller.DisplayName != name {
		t.Fatalf("seller after rename = %v, %v; want %q", got.Msg.GetListing().GetSeller(), err, name)
	}
}

// catalogue is the test's own record of what it listed: the oracle.
type catalogue struct {
	listings map[string]*item
}

type item struct {
	id, seller, title, category, condition string
	price                                  int64
	attrs                                  map[string]string
	created                                int // creation order
}

var (
	titleWords = []string{"red", "blue", "vintage", "bike", "lamp", "camera", "café", "guitar", "chair", "desk"}
	categories = []string{"home", "sport", "music"}
)

func (m *market) createCatalogue(t *testing.T, sellers []user, n int, rng *rand.Rand, cat *catalogue, seq *int) string {
	t.Helper()
	token := ""
	for i := 0; i < n; i++ {
		s := sellers[rng.IntN(len(sellers))]
		title := titleWords[rng.IntN(len(titleWords))] + " " + titleWords[rng.IntN(len(titleWords))] + " " + fmt.Sprint(*seq)
		cond := []swapmeetv1.Condition{swapmeetv1.Condition_CONDITION_NEW, swapmeetv1.Condition_CONDITION_GOOD, swapmeetv1.Condition_CONDITION_POOR}[rng.IntN(3)]
		it := &item{seller: s.id, title: title, category: categories[rng.IntN(3)], condition: strings.TrimPrefix(cond.String(), "CONDITION_"),
			price: int64(100 * (1 + rng.IntN(20))), attrs: map[string]string{"color": []string{"red", "green"}[rng.IntN(2)]}, created: *seq}
		*seq++
		res, err := m.listings.CreateListing(ctx, authed(&swapmeetv1.CreateListingRequest{
			Title: it.title, Description: "A nice thing.", Category: it.category, Condition: cond,
			Price: eur(it.price), Attributes: it.attrs,
		}, s.token))
		if err != nil {
			t.Fatal(err)
		}
		it.id = res.Msg.ListingId
		cat.listings[it.id] = it
		token = res.Msg.ConsistencyToken
	}
	return token
}

// expect is the oracle: the ids matching f in the order s, from the record.
func (c *catalogue) expect(f func(*item) bool, s swapmeetv1.SearchSort) []string {
	var out []*item
	for _, it := range c.listings {
		if f(it) {
			out = append(out, it)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch s {
		case swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC:
			if a.price != b.price {
				return a.price < b.price
			}
			return a.created < b.created // ties: by id ascending, so oldest first
		case swapmeetv1.SearchSort_SEARCH_SORT_PRICE_DESC:
			if a.price != b.price {
				return a.price > b.price
			}
		}
		return a.created > b.created // NEWEST, and PRICE_DESC's ties: by id descending, so newest first
	})
	ids := make([]string, len(out))
	for i, it := range out {
		ids[i] = it.id
	}
	return ids
}

func (m *market) searchAll(t *testing.T, req *swapmeetv1.SearchListingsRequest, between func()) []string {
	t.Helper()
	var ids []string
	for page := 0; page < 100; page++ {
		res, err := m.listings.SearchListings(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatalf("search %v: %v", req, err)
		}
		for _, l := range res.Msg.Listings {
			ids = append(ids, l.ListingId)
		}
		if res.Msg.NextPageToken == "" {
			return ids
		}
		req.PageToken = res.Msg.NextPageToken
		req.ConsistencyToken = ""
		if between != nil {
			between()
		}
	}
	t.Fatal("more than 100 pages")
	return nil
}

func TestSearchOnAGeneratedCatalogue(t *testing.T) {
	m := newLiveMarket(t, connect.WithHTTPGet())
	rng := rand.New(rand.NewPCG(7, 7))
	sellers := []user{m.signUp("alice"), m.signUp("bob"), m.signUp("carol")}
	cat := &catalogue{listings: map[string]*item{}}
	seq := 0
	token := m.createCatalogue(t, sellers, 90, rng, cat, &seq)
	// Prices tie often (20 distinct values), so ties are exercised.

	all := func(*item) bool { return true }
	hasWords := func(words ...string) func(*item) bool {
		return func(it *item) bool {
			kw := foldedWords(it.title + " A nice thing.")
			for _, w := range words {
				if !slices.Contains(kw, w) {
					return false
				}
			}
			return true
		}
	}
	for _, tc := range []struct {
		name string
		req  *swapmeetv1.SearchListingsRequest
		want func(*item) bool
	}{
		{"everything, newest", &swapmeetv1.SearchListingsRequest{}, all},
		{"cheapest first", &swapmeetv1.SearchListingsRequest{Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC}, all},
		{"dearest first", &swapmeetv1.SearchListingsRequest{Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_DESC}, all},
		{"one word, upper case", &swapmeetv1.SearchListingsRequest{Query: "GUITAR"}, hasWords("guitar")},
		{"one word with an accent", &swapmeetv1.SearchListingsRequest{Query: "café"}, hasWords("cafe")},
		{"all words", &swapmeetv1.SearchListingsRequest{Query: "vintage  Bike!"}, hasWords("vintage", "bike")},
		{"three words (one in every description), cheapest first", &swapmeetv1.SearchListingsRequest{Query: "nice lamp red", Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC},
			hasWords("nice", "lamp", "red")},
		{"two words, one of them common", &swapmeetv1.SearchListingsRequest{Query: "red desk"}, hasWords("red", "desk")},
		{"category and condition", &swapmeetv1.SearchListingsRequest{Category: "music", Condition: swapmeetv1.Condition_CONDITION_GOOD},
			func(it *item) bool { return it.category == "music" && it.condition == "GOOD" }},
		{"price range", &swapmeetv1.SearchListingsRequest{MinPrice: eur(500), MaxPrice: eur(1200), Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_DESC},
			func(it *item) bool { return it.price >= 500 && it.price <= 1200 }},
		{"seller", &swapmeetv1.SearchListingsRequest{SellerId: sellers[1].id}, func(it *item) bool { return it.seller == sellers[1].id }},
		{"attribute", &swapmeetv1.SearchListingsRequest{Attributes: map[string]string{"color": "green"}}, func(it *item) bool { return it.attrs["color"] == "green" }},
		{"everything at once", &swapmeetv1.SearchListingsRequest{Query: "red", Category: "home", Attributes: map[string]string{"color": "red"}, MaxPrice: eur(1500), Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC},
			func(it *item) bool {
				return hasWords("red")(it) && it.category == "home" && it.attrs["color"] == "red" && it.price <= 1500
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.PageSize = 7
			tc.req.ConsistencyToken = token
			got := m.searchAll(t, tc.req, nil)
			want := cat.expect(tc.want, tc.req.Sort)
			if len(want) == 0 {
				t.Fatal("the catalogue has no listing this query should find: the case tests nothing")
			}
			if tc.req.Query != "" && tc.req.Sort == swapmeetv1.SearchSort_SEARCH_SORT_UNSPECIFIED {
				// Ordered by relevance (a title with the word twice ranks
				// higher): TestKeywordsByStemAndRelevance checks the order,
				// this the matches.
				got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d results, want %d\ngot  %v\nwant %v", len(got), len(want), got, want)
			}
		})
	}

	// Paging while listings are inserted: every listing that existed at the
	// start is seen exactly once, whatever the order.
	for _, s := range []swapmeetv1.SearchSort{swapmeetv1.SearchSort_SEARCH_SORT_NEWEST, swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC} {
		before := cat.expect(all, s)
		// The first page waits for every listing so far; later pages
		// race the inserts on purpose.
		got := m.searchAll(t, &swapmeetv1.SearchListingsRequest{PageSize: 9, Sort: s, ConsistencyToken: token}, func() {
			token = m.createCatalogue(t, sellers, 3, rng, cat, &seq)
		})
		seen := map[string]int{}
		for _, id := range got {
			seen[id]++
			if seen[id] > 1 {
				t.Fatalf("%v: listing %s came twice", s, id)
			}
		}
		for _, id := range before {
			if seen[id] != 1 {
				t.Fatalf("%v: listing %s, present from the start, was seen %d times", s, id, seen[id])
			}
		}
	}

	for _, bad := range []*swapmeetv1.SearchListingsRequest{
		{PageSize: 101},
		{PageToken: "garbage"},
		{Query: "a"},
		{MinPrice: eur(10), MaxPrice: &swapmeetv1.Money{CurrencyCode: "USD", AmountMinor: 20}},
		{Attributes: map[string]string{"$where": "1"}},
		{SellerId: "nope"},
	} {
		_, err := m.listings.SearchListings(ctx, connect.NewRequest(bad))
		wantCode(t, err, connect.CodeInvalidArgument)
	}
	// A token from one query does not page another.
	res, err := m.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{PageSize: 5}))
	if err != nil || res.Msg.NextPageToken == "" {
		t.Fatalf("first page: %v", err)
	}
	_, err = m.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{PageSize: 5, Category: "home", PageToken: res.Msg.NextPageToken}))
	wantCode(t, err, connect.CodeInvalidArgument)
}

func TestOrdersAndReviewsQueries(t *testing.T) {
	m := newLiveMarket(t)
	seller, buyer, stranger := m.signUp("seller"), m.signUp("buyer"), m.signUp("stranger")
	var orders []string
	for i := 0; i < 5; i++ {
		orders = append(orders, m.order(buyer, m.listing(seller, fmt.Sprint("Thing ", i))))
	}
	_, err := m.orders.MarkOrderPaid(ctx, authed(&swapmeetv1.MarkOrderPaidRequest{OrderId: orders[0]}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.orders.MarkOrderShipped(ctx, authed(&swapmeetv1.MarkOrderShippedRequest{OrderId: orders[0]}, seller.token)); err != nil {
		t.Fatal(err)
	}
	del, err := m.orders.ConfirmDelivery(ctx, authed(&swapmeetv1.ConfirmDeliveryRequest{OrderId: orders[0]}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.orders.GetOrder(ctx, authed(&swapmeetv1.GetOrderRequest{OrderId: orders[0], ConsistencyToken: del.Msg.ConsistencyToken}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	o := got.Msg.Order
	if o.Status != swapmeetv1.OrderStatus_ORDER_STATUS_DELIVERED || len(o.History) != 4 || len(o.Items) != 1 ||
		o.Items[0].Title != "Thing 0" || o.Items[0].SellerDisplayName != "seller" || o.Buyer.UserId != buyer.id {
		t.Fatalf("order = %v", o)
	}
	_, err = m.orders.GetOrder(ctx, authed(&swapmeetv1.GetOrderRequest{OrderId: orders[0]}, stranger.token))
	wantCode(t, err, connect.CodeNotFound)
	_, err = m.orders.GetOrder(ctx, connect.NewRequest(&swapmeetv1.GetOrderRequest{OrderId: orders[0]}))
	wantCode(t, err, connect.CodeUnauthenticated)

	list := func(u user, role swapmeetv1.OrderRole, status swapmeetv1.OrderStatus) []string {
		var ids []string
		req := &swapmeetv1.ListOrdersRequest{Role: role, Status: status, PageSize: 2, ConsistencyToken: del.Msg.ConsistencyToken}
		for {
			res, err := m.orders.ListOrders(ctx, authed(req, u.token))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.Msg.Orders {
				ids = append(ids, o.OrderId)
			}
			if res.Msg.NextPageToken == "" {
				return ids
			}
			req.PageToken = res.Msg.NextPageToken
		}
	}
	newestFirst := slices.Clone(orders)
	slices.Reverse(newestFirst)
	if got := list(buyer, swapmeetv1.OrderRole_ORDER_ROLE_BUYER, 0); !slices.Equal(got, newestFirst) {
		t.Fatalf("buyer's orders = %v, want %v", got, newestFirst)
	}
	if got := list(seller, swapmeetv1.OrderRole_ORDER_ROLE_SELLER, swapmeetv1.OrderStatus_ORDER_STATUS_DELIVERED); !slices.Equal(got, orders[:1]) {
		t.Fatalf("seller's delivered orders = %v", got)
	}
	if got := list(stranger, swapmeetv1.OrderRole_ORDER_ROLE_BUYER, 0); len(got) != 0 {
		t.Fatalf("a stranger sees orders %v", got)
	}
	_, err = m.orders.ListOrders(ctx, authed(&swapmeetv1.ListOrdersRequest{}, buyer.token))
	wantCode(t, err, connect.CodeInvalidArgument)

	rev, err := m.reviews.CreateReview(ctx, authed(&swapmeetv1.CreateReviewRequest{OrderId: orders[0], Rating: 4, Comment: "Good"}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := m.reviews.ListSellerReviews(ctx, connect.NewRequest(&swapmeetv1.ListSellerReviewsRequest{SellerId: seller.id, ConsistencyToken: rev.Msg.ConsistencyToken}))
	if err != nil {
		t.Fatal(err)
	}
	if rs.Msg.RatingCount != 1 || rs.Msg.RatingAverage != 4 || len(rs.Msg.Reviews) != 1 || rs.Msg.Reviews[0].Author.DisplayName != "buyer" {
		t.Fatalf("reviews = %v", rs.Msg)
	}
	// The new rating reaches the seller's listings too.
	l, err := m.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{SellerId: seller.id, Status: swapmeetv1.ListingStatus_LISTING_STATUS_SOLD, ConsistencyToken: rev.Msg.ConsistencyToken}))
	if err != nil || len(l.Msg.Listings) == 0 {
		t.Fatalf("seller's sold listings: %v", err)
	}
	for _, x := range l.Msg.Listings {
		if x.Seller.RatingCount != 1 || x.Seller.RatingAverage != 4 {
			t.Fatalf("listing %s shows seller rating %v", x.ListingId, x.Seller)
		}
	}
	_, err = m.reviews.ListSellerReviews(ctx, connect.NewRequest(&swapmeetv1.ListSellerReviewsRequest{SellerId: uuid.NewString()}))
	wantCode(t, err, connect.CodeNotFound)

	// A new order is on both parties' lists with its own token, at once.
	placed, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{
		ListingIds: []string{m.listing(seller, "Thing 5")}, IdempotencyKey: "at-once"}, stranger.token))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		u    user
		role swapmeetv1.OrderRole
	}{{stranger, swapmeetv1.OrderRole_ORDER_ROLE_BUYER}, {seller, swapmeetv1.OrderRole_ORDER_ROLE_SELLER}} {
		res, err := m.orders.ListOrders(ctx, authed(&swapmeetv1.ListOrdersRequest{Role: c.role, PageSize: 1,
			ConsistencyToken: placed.Msg.ConsistencyToken}, c.u.token))
		if err != nil || len(res.Msg.Orders) != 1 || res.Msg.Orders[0].OrderId != placed.Msg.OrderId {
			t.Fatalf("%v's first order with the placing token: %v, %v", c.role, res, err)
		}
	}
}

// TestReadsWithRedisDown stops a private Redis: every query still answers
// from MongoDB, and the breaker keeps each one fast.
func TestReadsWithRedisDown(t *testing.T) {
	r := itest.StartRedis(t)
	e := itest.New(t)
	e.UseRedis(t, r.URL())
	e.StartCDC(t)
	srv, a := e.StartAPI(t)
	m := &market{t: t, e: e, srv: srv, app: a,
		users:    swapmeetv1connect.NewUserServiceClient(srv.Client(), srv.URL),
		listings: swapmeetv1connect.NewListingServiceClient(srv.Client(), srv.URL),
		orders:   swapmeetv1connect.NewOrderServiceClient(srv.Client(), srv.URL),
		reviews:  swapmeetv1connect.NewReviewServiceClient(srv.Client(), srv.URL),
	}
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	listing := m.listing(seller, "Survivor")
	order := m.order(buyer, m.listing(seller, "Bought"))
	last, err := m.orders.MarkOrderPaid(ctx, authed(&swapmeetv1.MarkOrderPaidRequest{OrderId: order}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	// Everything is projected before Redis goes.
	if _, err := m.orders.GetOrder(ctx, authed(&swapmeetv1.GetOrderRequest{OrderId: order, ConsistencyToken: last.Msg.ConsistencyToken}, buyer.token)); err != nil {
		t.Fatal(err)
	}
	r.Stop()

	var slowest time.Duration
	for round := 0; round < 5; round++ {
		for name, call := range map[string]func() error{
			"GetListing": func() error {
				res, err := m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: listing}))
				if err == nil && res.Msg.Listing.Title != "Survivor" {
					return fmt.Errorf("title %q", res.Msg.Listing.Title)
				}
				return err
			},
			"SearchListings": func() error {
				res, err := m.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{Query: "survivor"}))
				if err == nil && len(res.Msg.Listings) != 1 {
					return fmt.Errorf("%d results", len(res.Msg.Listings))
				}
				return err
			},
			"GetUser": func() error {
				_, err := m.users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: seller.id}))
				return err
			},
			"GetOrder": func() error {
				res, err := m.orders.GetOrder(ctx, authed(&swapmeetv1.GetOrderRequest{OrderId: order, ConsistencyToken: last.Msg.ConsistencyToken}, buyer.token))
				if err == nil && res.Msg.Order.Status != swapmeetv1.OrderStatus_ORDER_STATUS_PAID {
					return fmt.Errorf("status %v", res.Msg.Order.Status)
				}
				return err
			},
			"ListOrders": func() error {
				res, err := m.orders.ListOrders(ctx, authed(&swapmeetv1.ListOrdersRequest{Role: swapmeetv1.OrderRole_ORDER_ROLE_SELLER}, seller.token))
				if err == nil && len(res.Msg.Orders) != 1 {
					return fmt.Errorf("%d orders", len(res.Msg.Orders))
				}
				return err
			},
			"ListSellerReviews": func() error {
				_, err := m.reviews.ListSellerReviews(ctx, connect.NewRequest(&swapmeetv1.ListSellerReviewsRequest{SellerId: seller.id}))
				return err
			},
		} {
			start := time.Now()
			if err := call(); err != nil {
				t.Fatalf("%s with Redis down: %v", name, err)
			}
			slowest = max(slowest, time.Since(start))
		}
	}
	if slowest > 500*time.Millisecond {
		t.Fatalf("the slowest read with Redis down took %s", slowest)
	}
	t.Logf("slowest read with Redis down: %s", slowest)
}

func parseToken(s string) (uint64, error) {
	p, err := consistency.ParseWriteToken(s)
	return p.LSN, err
}

// TestKeywordsByStemAndRelevance: a keyword finds the other forms of its
// word ("chairs" finds "chair", "lighting" finds "lights"), and under
// SEARCH_SORT_RELEVANCE, the default with a query, the listing whose title
// is the query comes first, ahead of newer listings that also match.
func TestKeywordsByStemAndRelevance(t *testing.T) {
	m := newLiveMarket(t)
	seller := m.signUp("seller")
	create := func(title, description string) (string, string) {
		req := validListing(title)
		req.Description = description
		res, err := m.listings.CreateListing(ctx, authed(req, seller.token))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.ListingId, res.Msg.ConsistencyToken
	}
	exact, _ := create("Oak chair", "Solid, sturdy.")
	chairs, _ := create("Two kitchen chairs and an oak table", "Chairs need a coat of paint.")
	lights, _ := create("Desk lights", "Oak base, warm light.")
	_, token := create("Oak shelf", "Holds books; no chair included.")

	search := func(req *swapmeetv1.SearchListingsRequest) []string {
		t.Helper()
		req.ConsistencyToken = token
		res, err := m.listings.SearchListings(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, l := range res.Msg.Listings {
			ids = append(ids, l.ListingId)
		}
		return ids
	}
	if got := search(&swapmeetv1.SearchListingsRequest{Query: "chairs", Sort: swapmeetv1.SearchSort_SEARCH_SORT_NEWEST}); len(got) != 3 || !slices.Contains(got, exact) || !slices.Contains(got, chairs) {
		t.Errorf(`"chairs" found %v, want the three listings that say chair or chairs, %s and %s among them`, got, exact, chairs)
	}
	if got := search(&swapmeetv1.SearchListingsRequest{Query: "lighting"}); !slices.Equal(got, []string{lights}) {
		t.Errorf(`"lighting" found %v, want [%s]`, got, lights)
	}
	for _, sort := range []swapmeetv1.SearchSort{swapmeetv1.SearchSort_SEARCH_SORT_UNSPECIFIED, swapmeetv1.SearchSort_SEARCH_SORT_RELEVANCE} {
		got := search(&swapmeetv1.SearchListingsRequest{Query: "oak chair", Sort: sort})
		if len(got) != 3 || got[0] != exact {
			t.Errorf("%v: \"oak chair\" found %v, want 3 listings, the exact title %s first", sort, got, exact)
		}
	}
	// Relevance ranks keywords: without a query it is refused.
	_, err := m.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{Sort: swapmeetv1.SearchSort_SEARCH_SORT_RELEVANCE}))
	wantCode(t, err, connect.CodeInvalidArgument)
}

// TestWriteVisibleToSearchAndCategoriesAtOnce: with a write's consistency
// token, SearchListings and ListCategories reflect the write on the first
// call, with no retry: a new listing in a new category, a withdrawal, and
// a seller's rename, which reaches the listing's search row by fan-out.
func TestWriteVisibleToSearchAndCategoriesAtOnce(t *testing.T) {
	m := newLiveMarket(t)
	seller := m.signUp("seller")
	categories := func(token string) map[string]int64 {
		t.Helper()
		res, err := m.listings.ListCategories(ctx, connect.NewRequest(&swapmeetv1.ListCategoriesRequest{ConsistencyToken: token}))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, c := range res.Msg.Categories {
			out[c.Name] = c.AvailableCount
		}
		return out
	}
	inCategory := func(category, token string) []*swapmeetv1.Listing {
		t.Helper()
		res, err := m.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{Category: category, ConsistencyToken: token}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.Listings
	}
	// Both are read (and cached) before each write.
	if c := categories(""); c["harpsichords"] != 0 {
		t.Fatalf("categories before any listing: %v", c)
	}
	_ = inCategory("harpsichords", "")
	var id, token string
	for i := range 2 {
		req := validListing(fmt.Sprint("Harpsichord ", i))
		req.Category = "harpsichords" // a category a seller typed
		res, err := m.listings.CreateListing(ctx, authed(req, seller.token))
		if err != nil {
			t.Fatal(err)
		}
		id, token = res.Msg.ListingId, res.Msg.ConsistencyToken
		if got := categories(token)["harpsichords"]; got != int64(i+1) {
			t.Fatalf("after listing %d: ListCategories counts %d harpsichords, want %d", i+1, got, i+1)
		}
		if got := inCategory("harpsichords", token); len(got) != i+1 || got[0].ListingId != id {
			t.Fatalf("after listing %d: SearchListings found %d, the newest first? want %d, %s first", i+1, len(got), i+1, id)
		}
	}
	w, err := m.listings.WithdrawListing(ctx, authed(&swapmeetv1.WithdrawListingRequest{ListingId: id, ExpectedVersion: 1}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	if got := categories(w.Msg.ConsistencyToken)["harpsichords"]; got != 1 {
		t.Fatalf("after a withdrawal: ListCategories counts %d harpsichords, want 1", got)
	}
	if got := inCategory("harpsichords", w.Msg.ConsistencyToken); len(got) != 1 || got[0].ListingId == id {
		t.Fatalf("after a withdrawal: SearchListings found %v, want only the other listing", got)
	}
	name := "Renamed seller"
	u, err := m.users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	if got := inCategory("harpsichords", u.Msg.ConsistencyToken); len(got) != 1 || got[0].Seller.DisplayName != "Renamed seller" {
		t.Fatalf("after a rename: SearchListings shows %v, want the seller's new name", got)
	}
}

// An answer to a caller with credentials is private: over Connect's GET,
// which a shared cache in front of the API would otherwise store, a
// buyer's order and list say "private, no-store"; a public listing may be
// cached.
func TestPrivateAnswersAreNotCached(t *testing.T) {
	m := newLiveMarket(t, connect.WithHTTPGet())
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	placed, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{
		ListingIds: []string{m.listing(seller, "Lamp")}, IdempotencyKey: "private-answers",
	}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.orders.GetOrder(ctx, authed(&swapmeetv1.GetOrderRequest{OrderId: placed.Msg.OrderId, ConsistencyToken: placed.Msg.ConsistencyToken}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	if cc := got.Header().Get("Cache-Control"); cc != "private, no-store" {
		t.Errorf("GetOrder: Cache-Control %q, want private, no-store", cc)
	}
	list, err := m.orders.ListOrders(ctx, authed(&swapmeetv1.ListOrdersRequest{Role: swapmeetv1.OrderRole_ORDER_ROLE_BUYER}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	if cc := list.Header().Get("Cache-Control"); cc != "private, no-store" {
		t.Errorf("ListOrders: Cache-Control %q, want private, no-store", cc)
	}
	pub, err := m.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if cc := pub.Header().Get("Cache-Control"); strings.Contains(cc, "private") {
		t.Errorf("an anonymous search: Cache-Control %q", cc)
	}
}

// foldedWords are the lower-cased words of s with their accents folded: what a
// keyword matches, stems aside.
func foldedWords(s string) []string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	folded, _, err := transform.String(t, strings.ToLower(s))
	if err != nil {
		panic(err)
	}
	return strings.FieldsFunc(folded, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// TestListMyListings: a seller pages through every listing of theirs,
// withdrawn and sold ones included, newest first, and by status; no one
// else sees them that way, and the public search never lists withdrawn
// listings.
func TestListMyListings(t *testing.T) {
	m := newLiveMarket(t)
	seller, other, buyer := m.signUp("seller"), m.signUp("other"), m.signUp("buyer")
	const n = 25
	var ids []string // newest first
	var withdrawn, sold string
	token := ""
	for i := range n {
		res, err := m.listings.CreateListing(ctx, authed(validListing(fmt.Sprintf("Item %d", i)), seller.token))
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{res.Msg.ListingId}, ids...)
		token = res.Msg.ConsistencyToken
	}
	m.listing(other, "Someone else's")
	withdrawn, sold = ids[3], ids[7]
	w, err := m.listings.WithdrawListing(ctx, authed(&swapmeetv1.WithdrawListingRequest{ListingId: withdrawn, ExpectedVersion: 1}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	m.order(buyer, sold)
	token = w.Msg.ConsistencyToken

	mine := func(u user, status swapmeetv1.ListingStatus, size int32) (ids, statuses []string) {
		t.Helper()
		req := &swapmeetv1.ListMyListingsRequest{Status: status, PageSize: size, ConsistencyToken: token}
		for pages := 0; ; pages++ {
			if pages > n {
				t.Fatal("ListMyListings pages without end")
			}
			res, err := m.listings.ListMyListings(ctx, authed(req, u.token))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range res.Msg.Listings {
				if l.Seller.GetUserId() != u.id {
					t.Fatalf("ListMyListings of %s returned %s's listing %s", u.id, l.Seller.GetUserId(), l.ListingId)
				}
				ids = append(ids, l.ListingId)
				statuses = append(statuses, l.Status.String())
			}
			if res.Msg.NextPageToken == "" {
				return ids, statuses
			}
			req.PageToken = res.Msg.NextPageToken
		}
	}
	// Wait for the order's write too: it is the last one.
	itest.Eventually(t, 15*time.Second, "the sold listing on the read side", func() (bool, error) {
		_, st := mine(seller, swapmeetv1.ListingStatus_LISTING_STATUS_SOLD, 0)
		return len(st) == 1, nil
	})
	got, statuses := mine(seller, swapmeetv1.ListingStatus_LISTING_STATUS_UNSPECIFIED, 10)
	if !slices.Equal(got, ids) {
		t.Fatalf("every listing, 10 a page: %v\nwant newest first %v", got, ids)
	}
	if statuses[3] != "LISTING_STATUS_WITHDRAWN" || statuses[7] != "LISTING_STATUS_SOLD" {
		t.Fatalf("statuses %v: want the withdrawn and the sold listing among them", statuses)
	}
	if got, _ := mine(seller, swapmeetv1.ListingStatus_LISTING_STATUS_WITHDRAWN, 0); !slices.Equal(got, []string{withdrawn}) {
		t.Errorf("WITHDRAWN: %v, want [%s]", got, withdrawn)
	}
	if got, _ := mine(seller, swapmeetv1.ListingStatus_LISTING_STATUS_AVAILABLE, 7); len(got) != n-2 || slices.Contains(got, withdrawn) || slices.Contains(got, sold) {
		t.Errorf("AVAILABLE: %d listings, want %d without the withdrawn and the sold one", len(got), n-2)
	}
	if got, _ := mine(other, swapmeetv1.ListingStatus_LISTING_STATUS_UNSPECIFIED, 0); len(got) != 1 {
		t.Errorf("another seller sees %d listings of theirs, want 1", len(got))
	}

	// Private: a session is needed, and a page token names its caller.
	_, err = m.listings.ListMyListings(ctx, connect.NewRequest(&swapmeetv1.ListMyListingsRequest{}))
	wantCode(t, err, connect.CodeUnauthenticated)
	first, err := m.listings.ListMyListings(ctx, authed(&swapmeetv1.ListMyListingsRequest{PageSize: 5}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.listings.ListMyListings(ctx, authed(&swapmeetv1.ListMyListingsRequest{PageSize: 5, PageToken: first.Msg.NextPageToken}, other.token))
	wantCode(t, err, connect.CodeInvalidArgument)
	res, err := m.listings.ListMyListings(ctx, authed(&swapmeetv1.ListMyListingsRequest{}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	if cc := res.Header().Get("Cache-Control"); cc != "private, no-store" {
		t.Errorf("ListMyListings: Cache-Control %q, want private, no-store", cc)
	}

	// The public search lists no one's withdrawn listings, and shows a
	// seller's sold ones only when asked.
	_, err = m.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{SellerId: seller.id, Status: swapmeetv1.ListingStatus_LISTING_STATUS_WITHDRAWN}))
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = m.listings.SearchListings(ctx, authed(&swapmeetv1.SearchListingsRequest{Status: swapmeetv1.ListingStatus_LISTING_STATUS_WITHDRAWN}, seller.token))
	wantCode(t, err, connect.CodeInvalidArgument)
	pub, err := m.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{SellerId: seller.id, PageSize: 100}))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range pub.Msg.Listings {
		if l.ListingId == withdrawn || l.ListingId == sold {
			t.Errorf("the public search lists %s, which is %s", l.ListingId, l.Status)
		}
	}
}
