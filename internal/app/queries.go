package app

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// MediaURLs are the presigned URLs of one image, made at read time and
// never stored: they expire.
type MediaURLs struct {
	URL          string
	ThumbnailURL string // the image itself when there is no thumbnail
	Expires      time.Time
}

// ListingView is a listing with its images' URLs, aligned with Media.
type ListingView struct {
	readstore.Listing
	URLs []MediaURLs
}

// OrderView is an order with its items' thumbnail URLs, aligned with Items.
type OrderView struct {
	readstore.Order
	URLs []MediaURLs // zero for items without an image
}

// presign makes the URLs of one image.
func (q *Queries) presign(ctx context.Context, m readstore.Media) (MediaURLs, error) {
	if q.deps.Media == nil {
		return MediaURLs{}, nil
	}
	u, exp, err := q.deps.Media.PresignedGet(ctx, m.ObjectKey)
	if err != nil {
		return MediaURLs{}, err
	}
	out := MediaURLs{URL: u, ThumbnailURL: u, Expires: exp}
	if m.ThumbnailKey != "" {
		if out.ThumbnailURL, _, err = q.deps.Media.PresignedGet(ctx, m.ThumbnailKey); err != nil {
			return MediaURLs{}, err
		}
	}
	return out, nil
}

func (q *Queries) listingView(ctx context.Context, l readstore.Listing) (ListingView, error) {
	v := ListingView{Listing: l, URLs: make([]MediaURLs, len(l.Media))}
	for i, m := range l.Media {
		u, err := q.presign(ctx, m)
		if err != nil {
			return ListingView{}, fmt.Errorf("listing %s: %w", l.ID, err)
		}
		v.URLs[i] = u
	}
	return v, nil
}

// GetListing returns one listing, with fresh image URLs.
func (q *Queries) GetListing(ctx context.Context, id, token string) (ListingView, error) {
	var v violations
	lid := v.id("listing_id", id)
	if err := v.err(); err != nil {
		return ListingView{}, err
	}
	if err := q.awaitToken(ctx, token); err != nil {
		return ListingView{}, err
	}
	l, err := getDoc[readstore.Listing](ctx, q, readstore.Listings, q.deps.Cache.ListingKey(lid.String()), lid.String(), "listing")
	if err != nil {
		return ListingView{}, err
	}
	return q.listingView(ctx, l)
}

// ListingSearch is a SearchListings request in domain terms.
type ListingSearch struct {
	Query      string
	Category   string
	Condition  string
	MinPrice   *Money
	MaxPrice   *Money
	SellerID   string
	Attributes map[string]string
	Status     string // "" = AVAILABLE
	Sort       readstore.Sort
	PageSize   int32
	PageToken  string
}

const (
	maxQueryLen    = 200
	maxQueryWords  = 10
	maxAttrFilters = 10
)

// searchPlan is a validated search: what the store runs, and its identity.
type searchPlan struct {
	filter readstore.ListingFilter
	sort   readstore.Sort
	limit  int
	cursor *readstore.Cursor
	query  string // digest of filter and sort: what page tokens are bound to
}

func planSearch(s ListingSearch) (searchPlan, error) {
	var v violations
	p := searchPlan{sort: s.Sort}
	f := &p.filter
	f.Status = s.Status
	if f.Status == "" {
		f.Status = StatusAvailable
	}
	if s.Query != "" {
		v.text("query", s.Query, textRule{min: 0, max: maxQueryLen})
		f.Keywords = readstore.Keywords(s.Query)
		switch {
		case len(f.Keywords) == 0:
			v.add("query", "needs a word of at least 2 letters or digits")
		case len(f.Keywords) > maxQueryWords:
			v.add("query", "may have at most %d words", maxQueryWords)
		}
		sort.Strings(f.Keywords) // the same words in any order are the same query
	}
	if s.Category != "" {
		v.category("category", s.Category)
		f.Category = s.Category
	}
	if s.Condition != "" {
		v.condition("condition", s.Condition)
		f.Condition = s.Condition
	}
	if s.SellerID != "" {
		f.SellerID = v.id("seller_id", s.SellerID).String()
	}
	for _, b := range []struct {
		field string
		m     *Money
		dst   **int64
	}{{"min_price", s.MinPrice, &f.MinPrice}, {"max_price", s.MaxPrice, &f.MaxPrice}} {
		if b.m == nil {
			continue
		}
		if !currencyRE.MatchString(b.m.Currency) {
			v.add(b.field+".currency_code", "must be a three-letter upper-case ISO 4217 code")
		}
		if b.m.Minor < 0 {
			v.add(b.field+".amount_minor", "must not be negative")
		}
		if f.Currency != "" && f.Currency != b.m.Currency {
			v.add(b.field+".currency_code", "must match the other price bound")
		}
		f.Currency = b.m.Currency
		amount := b.m.Minor
		*b.dst = &amount
	}
	if f.MinPrice != nil && f.MaxPrice != nil && *f.MinPrice > *f.MaxPrice {
		v.add("max_price", "must not be below min_price")
	}
	if len(s.Attributes) > maxAttrFilters {
		v.add("attributes", "may filter on at most %d attributes", maxAttrFilters)
	} else {
		v.attributes("attributes", s.Attributes)
		for k, val := range s.Attributes {
			f.Attrs = append(f.Attrs, k+"="+val)
		}
		sort.Strings(f.Attrs)
	}
	p.limit = v.pageSize(s.PageSize)
	p.query = digest(struct {
		F readstore.ListingFilter
		S readstore.Sort
	}{*f, p.sort})
	p.cursor = v.cursor(s.PageToken, p.query)
	return p, v.err()
}

// searchPage is what a cached search result holds: documents, not views,
// because image URLs expire and are made at read time.
type searchPage struct {
	Listings []readstore.Listing `bson:"listings"`
	Next     string              `bson:"next"`
}

// SearchListings finds listings by keywords and filters, a page at a time.
// Pages are cached under the listings generation, which the CDC bumps on
// every listing change.
func (q *Queries) SearchListings(ctx context.Context, s ListingSearch, token string) ([]ListingView, string, error) {
	p, err := planSearch(s)
	if err != nil {
		return nil, "", err
	}
	if err := q.awaitToken(ctx, token); err != nil {
		return nil, "", err
	}
	// The generation is read before the store: a page computed from data
	// older than a bump lands under the old generation, which nobody reads.
	gen, genErr := q.deps.Cache.Generation(ctx, readstore.Listings)
	key := ""
	if genErr == nil {
		key = q.deps.Cache.PageKey(readstore.Listings, gen, digest(struct {
			Q string
			L int
			C *readstore.Cursor
		}{p.query, p.limit, p.cursor}))
		if b, hit, _ := q.deps.Cache.GetPage(ctx, key); hit {
			var page searchPage
			if err := bson.Unmarshal(b, &page); err == nil {
				return q.views(ctx, page)
			}
		}
	}
	docs, more, err := q.deps.Reads.SearchListings(ctx, p.filter, p.sort, p.cursor, p.limit)
	if err != nil {
		return nil, "", readErr("listings", err)
	}
	page := searchPage{Listings: docs}
	if more {
		last := docs[len(docs)-1]
		page.Next = encodePageToken(p.query, readstore.Cursor{CreatedAt: last.CreatedAt, Price: last.Price.Minor, ID: last.ID})
	}
	if key != "" {
		if b, err := bson.Marshal(page); err == nil {
			if err := q.deps.Cache.PutPage(ctx, key, b); err != nil && !errors.Is(err, cache.ErrSkipped) {
				q.deps.Log.Debug("cache page put failed", "err", err)
			}
		}
	}
	return q.views(ctx, page)
}

func (q *Queries) views(ctx context.Context, page searchPage) ([]ListingView, string, error) {
	out := make([]ListingView, 0, len(page.Listings))
	for _, l := range page.Listings {
		v, err := q.listingView(ctx, l)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	return out, page.Next, nil
}

func (q *Queries) orderView(ctx context.Context, o readstore.Order) (OrderView, error) {
	v := OrderView{Order: o, URLs: make([]MediaURLs, len(o.Items))}
	for i, it := range o.Items {
		if it.Thumbnail == nil {
			continue
		}
		u, err := q.presign(ctx, *it.Thumbnail)
		if err != nil {
			return OrderView{}, fmt.Errorf("order %s: %w", o.ID, err)
		}
		v.URLs[i] = u
	}
	return v, nil
}

// GetOrder returns an order to its buyer or seller. To anyone else it does
// not exist.
func (q *Queries) GetOrder(ctx context.Context, caller uuid.UUID, id, token string) (OrderView, error) {
	var v violations
	oid := v.id("order_id", id)
	if err := v.err(); err != nil {
		return OrderView{}, err
	}
	if err := q.awaitToken(ctx, token); err != nil {
		return OrderView{}, err
	}
	o, err := getDoc[readstore.Order](ctx, q, readstore.Orders, q.deps.Cache.OrderKey(oid.String()), oid.String(), "order")
	if err != nil {
		return OrderView{}, err
	}
	if o.Buyer.ID != caller.String() && o.Seller.ID != caller.String() {
		return OrderView{}, errorf(CodeNotFound, "order not found")
	}
	return q.orderView(ctx, o)
}

// Order roles for ListOrders.
const (
	RoleBuyer  = "buyer"
	RoleSeller = "seller"
)

// ListOrders returns the caller's orders as buyer or seller, newest first.
func (q *Queries) ListOrders(ctx context.Context, caller uuid.UUID, role, status string, pageSize int32, pageToken, token string) ([]OrderView, string, error) {
	var v violations
	if role != RoleBuyer && role != RoleSeller {
		v.add("role", "is required: BUYER or SELLER")
	}
	switch status {
	case "", OrderPending, OrderPaid, OrderShipped, OrderDelivered, OrderCancelled:
	default:
		v.add("status", "is not an order status")
	}
	limit := v.pageSize(pageSize)
	query := digest([]string{"orders", caller.String(), role, status})
	cur := v.cursor(pageToken, query)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	if err := q.awaitToken(ctx, token); err != nil {
		return nil, "", err
	}
	docs, more, err := q.deps.Reads.ListOrders(ctx, readstore.OrderFilter{UserID: caller.String(), Role: role, Status: status}, cur, limit)
	if err != nil {
		return nil, "", readErr("orders", err)
	}
	out := make([]OrderView, 0, len(docs))
	for _, o := range docs {
		ov, err := q.orderView(ctx, o)
		if err != nil {
			return nil, "", err
		}
		out = append(out, ov)
	}
	next := ""
	if more {
		last := docs[len(docs)-1]
		next = encodePageToken(query, readstore.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return out, next, nil
}

// SellerReviews is a page of a seller's reviews with their overall rating.
type SellerReviews struct {
	Reviews       []readstore.Review
	RatingAverage float64
	RatingCount   int32
	Next          string
}

// ListSellerReviews returns a seller's reviews, newest first, and the
// rating over all of them.
func (q *Queries) ListSellerReviews(ctx context.Context, sellerID string, pageSize int32, pageToken, token string) (SellerReviews, error) {
	var v violations
	sid := v.id("seller_id", sellerID)
	limit := v.pageSize(pageSize)
	query := digest([]string{"reviews", sid.String()})
	cur := v.cursor(pageToken, query)
	if err := v.err(); err != nil {
		return SellerReviews{}, err
	}
	if err := q.awaitToken(ctx, token); err != nil {
		return SellerReviews{}, err
	}
	seller, err := getDoc[readstore.User](ctx, q, readstore.Users, q.deps.Cache.UserKey(sid.String()), sid.String(), "seller")
	if err != nil {
		return SellerReviews{}, err
	}
	docs, more, err := q.deps.Reads.ListSellerReviews(ctx, sid.String(), cur, limit)
	if err != nil {
		return SellerReviews{}, readErr("reviews", err)
	}
	out := SellerReviews{Reviews: docs, RatingAverage: seller.RatingAverage, RatingCount: seller.RatingCount}
	if more {
		last := docs[len(docs)-1]
		out.Next = encodePageToken(query, readstore.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return out, nil
}
