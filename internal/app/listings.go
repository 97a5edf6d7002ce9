package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
)

// ListingInput carries a listing's editable fields.
type ListingInput struct {
	Title       string
	Description string
	Category    string
	Condition   string // one of Conditions
	Price       *Money
	Attributes  map[string]string
}

// ListingPaths are the fields UpdateListing can change.
var ListingPaths = []string{"title", "description", "category", "condition", "price", "attributes"}

// Listing statuses.
const (
	StatusAvailable = "AVAILABLE"
	StatusSold      = "SOLD"
	StatusWithdrawn = "WITHDRAWN"
)

// Written is what a write returns: the new version where there is one, and
// the consistency token of its commit.
type Written struct {
	ID               uuid.UUID
	Version          int64
	ConsistencyToken string
}

// CreateListing puts an item up for sale. With an idempotency key, a
// retry of the same request answers with the listing the first made (see
// idempotent).
func (c *Commands) CreateListing(ctx context.Context, seller uuid.UUID, in ListingInput, key string) (Written, error) {
	var v violations
	in = v.listing(in, func(string) bool { return true })
	if key != "" {
		v.text("idempotency_key", key, idempotencyKeyRule)
	}
	if err := v.err(); err != nil {
		return Written{}, err
	}
	attrs, err := attributesJSON(in.Attributes)
	if err != nil {
		return Written{}, err
	}
	k, err := newIdempotent(seller, "CreateListing", key, in)
	if err != nil {
		return Written{}, err
	}
	if w, ok, err := c.replayListing(ctx, k); ok || err != nil {
		return w, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Written{}, err
	}
	var version int64
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: seller.String(), IdempotencyKey: key}, func(q *sqlc.Queries) error {
		if err := k.claim(ctx, q, id); err != nil {
			return err
		}
		if err := c.checkListingQuotas(ctx, q, seller); err != nil {
			return err
		}
		version, err = q.CreateListing(ctx, sqlc.CreateListingParams{
			ID: id, SellerID: seller, Title: in.Title, Description: in.Description, Category: in.Category,
			Condition: in.Condition, PriceCurrency: in.Price.Currency, PriceMinor: in.Price.Minor, Attributes: attrs,
		})
		return err
	})
	if errors.Is(err, errKeyClaimed) { // a concurrent retry made it first
		if w, ok, err := c.replayListing(ctx, k); ok || err != nil {
			return w, err
		}
		return Written{}, errKeyBusy
	}
	if err != nil {
		return Written{}, fmt.Errorf("create listing: %w", err)
	}
	return Written{ID: id, Version: version, ConsistencyToken: consistency.WriteToken(commit.Position())}, nil
}

// replayListing answers a retry with the listing its key made: its id, its
// current version and a token at or after its creation.
func (c *Commands) replayListing(ctx context.Context, k idempotent) (Written, bool, error) {
	id, ok, err := k.previous(ctx, c.deps.Store)
	if !ok || err != nil {
		return Written{}, false, err
	}
	version, err := c.deps.Store.ListingVersion(ctx, id)
	if err != nil {
		return Written{}, false, fmt.Errorf("create listing: the listing of the idempotency key: %w", err)
	}
	token, err := c.currentToken(ctx)
	if err != nil {
		return Written{}, false, err
	}
	return Written{ID: id, Version: version, ConsistencyToken: token}, true, nil
}

// UpdateListing changes the fields named in paths, if the listing is still
// at expectedVersion.
func (c *Commands) UpdateListing(ctx context.Context, seller uuid.UUID, listingID string, expectedVersion int64, in ListingInput, paths []string) (Written, error) {
	var v violations
	id := v.id("listing_id", listingID)
	if expectedVersion < 1 {
		v.add("expected_version", "is required: the version you last read")
	}
	set := map[string]bool{}
	switch {
	case len(paths) == 0:
		v.add("update_mask", "must name the fields to change: %v", ListingPaths)
	case len(paths) > len(ListingPaths):
		v.add("update_mask", "names %d paths; there are only %d fields: %v", len(paths), len(ListingPaths), ListingPaths)
		paths = nil
	}
	for _, p := range paths {
		if !slices.Contains(ListingPaths, p) {
			v.add("update_mask", "unknown field %q; allowed: %v", truncate(p, 50), ListingPaths)
			continue
		}
		set[p] = true
	}
	in = v.listing(in, func(f string) bool { return set[f] })
	if err := v.err(); err != nil {
		return Written{}, err
	}
	attrs, err := attributesJSON(in.Attributes)
	if err != nil {
		return Written{}, err
	}
	price := Money{}
	if in.Price != nil {
		price = *in.Price
	}
	var version int64
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: seller.String()}, func(q *sqlc.Queries) error {
		if err := checkListingWritable(ctx, q, id, seller, expectedVersion); err != nil {
			return err
		}
		version, err = q.UpdateListing(ctx, sqlc.UpdateListingParams{
			ID: id, ExpectedVersion: expectedVersion,
			SetTitle: set["title"], Title: in.Title,
			SetDescription: set["description"], Description: in.Description,
			SetCategory: set["category"], Category: in.Category,
			SetCondition: set["condition"], Condition: in.Condition,
			SetPrice: set["price"], PriceCurrency: price.Currency, PriceMinor: price.Minor,
			SetAttributes: set["attributes"], Attributes: attrs,
		})
		return err
	})
	if err != nil {
		return Written{}, fmt.Errorf("update listing %s: %w", id, err)
	}
	return Written{ID: id, Version: version, ConsistencyToken: consistency.WriteToken(commit.Position())}, nil
}

// WithdrawListing takes an available listing off sale.
func (c *Commands) WithdrawListing(ctx context.Context, seller uuid.UUID, listingID string, expectedVersion int64) (Written, error) {
	var v violations
	id := v.id("listing_id", listingID)
	if expectedVersion < 1 {
		v.add("expected_version", "is required: the version you last read")
	}
	if err := v.err(); err != nil {
		return Written{}, err
	}
	var version int64
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: seller.String()}, func(q *sqlc.Queries) error {
		if err := checkListingWritable(ctx, q, id, seller, expectedVersion); err != nil {
			return err
		}
		var err error
		version, err = q.WithdrawListing(ctx, sqlc.WithdrawListingParams{ID: id, ExpectedVersion: expectedVersion})
		return err
	})
	if err != nil {
		return Written{}, fmt.Errorf("withdraw listing %s: %w", id, err)
	}
	return Written{ID: id, Version: version, ConsistencyToken: consistency.WriteToken(commit.Position())}, nil
}

// anyVersion skips the version check: images change a listing's document
// but not its version.
const anyVersion = 0

// checkListingWritable locks the listing and applies the rules for
// changing it: it exists, the caller sells it, it is still for sale, and
// (unless expectedVersion is anyVersion) the caller saw its latest
// version. The lock is held until commit, so the change that follows
// cannot race another.
func checkListingWritable(ctx context.Context, q *sqlc.Queries, id, seller uuid.UUID, expectedVersion int64) error {
	l, err := q.LockListing(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		return errorf(CodeNotFound, "listing not found")
	}
	if err != nil {
		return err
	}
	switch {
	case l.SellerID != seller:
		return errorf(CodePermissionDenied, "only the seller may change this listing")
	case l.Status != StatusAvailable:
		return refusef(CodeFailedPrecondition, ReasonListingNotEditable, "the listing is %s; only an AVAILABLE listing can be changed", l.Status)
	case expectedVersion != anyVersion && l.Version != expectedVersion:
		return refusef(CodeConflict, ReasonVersionConflict, "the listing is at version %d, not %d: reload it and retry", l.Version, expectedVersion)
	}
	return nil
}

func attributesJSON(m map[string]string) ([]byte, error) {
	if m == nil {
		m = map[string]string{}
	}
	return json.Marshal(m)
}

// GetListing returns one listing, with fresh image URLs.
func (q *Queries) GetListing(ctx context.Context, id, token string) (ListingView, error) {
	var v violations
	lid := v.id("listing_id", id)
	if err := v.err(); err != nil {
		return ListingView{}, err
	}
	ctx, err := q.awaitToken(ctx, token)
	if err != nil {
		return ListingView{}, err
	}
	l, err := getDoc[readstore.Listing](ctx, q, readstore.Listings, lid.String(), "listing")
	if err != nil {
		return ListingView{}, err
	}
	return q.listingView(ctx, l)
}

// SearchSort orders a listing search.
type SearchSort int

// The search orders.
const (
	// SortDefault is SortRelevance for a keyword query, else SortNewest.
	SortDefault   SearchSort = iota
	SortNewest               // created_at, id: descending
	SortPriceAsc             // price, id: ascending
	SortPriceDesc            // price, id: descending
	SortRelevance            // the best matches first, over a capped candidate set (docs/search.md)
)

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
	Sort       SearchSort
	PageSize   int32
	PageToken  string
}

const (
	maxQueryLen    = 200
	maxQueryWords  = 10
	maxAttrFilters = 10
)

// planSearch validates a search and turns it into the search store's
// query. The store checks what only it can: the page token, and that a
// relevance order has keywords.
func planSearch(s ListingSearch) (search.Query, error) {
	var v violations
	q := search.Query{Status: s.Status, Sort: search.Sort(s.Sort), PageToken: s.PageToken}
	switch q.Status {
	case "":
		q.Status = StatusAvailable
	case StatusAvailable, StatusSold:
	case StatusWithdrawn:
		v.add("status", "WITHDRAWN listings are listed only to their seller, by ListMyListings")
	default:
		v.add("status", "must be AVAILABLE or SOLD")
	}
	if s.Query != "" {
		v.text("query", s.Query, textRule{min: 0, max: maxQueryLen})
		switch words := queryWords(s.Query); {
		case len(words) == 0:
			v.add("query", "needs a word of at least 2 letters or digits")
		case len(words) > maxQueryWords:
			v.add("query", "may have at most %d words", maxQueryWords)
		}
		q.Text = s.Query
	}
	if s.Category != "" {
		v.category("category", s.Category)
		q.Category = s.Category
	}
	if s.Condition != "" {
		v.condition("condition", s.Condition)
		q.Condition = s.Condition
	}
	if s.SellerID != "" {
		q.SellerID = v.id("seller_id", s.SellerID).String()
	}
	for _, b := range []struct {
		field string
		m     *Money
		dst   **int64
	}{{"min_price", s.MinPrice, &q.MinPrice}, {"max_price", s.MaxPrice, &q.MaxPrice}} {
		if b.m == nil {
			continue
		}
		if !currencyRE.MatchString(b.m.Currency) {
			v.add(b.field+".currency_code", "must be a three-letter upper-case ISO 4217 code")
		}
		if b.m.Minor < 0 {
			v.add(b.field+".amount_minor", "must not be negative")
		}
		if q.Currency != "" && q.Currency != b.m.Currency {
			v.add(b.field+".currency_code", "must match the other price bound")
		}
		q.Currency = b.m.Currency
		amount := b.m.Minor
		*b.dst = &amount
	}
	if q.MinPrice != nil && q.MaxPrice != nil && *q.MinPrice > *q.MaxPrice {
		v.add("max_price", "must not be below min_price")
	}
	if len(s.Attributes) > maxAttrFilters {
		v.add("attributes", "may filter on at most %d attributes", maxAttrFilters)
	} else {
		v.attributes("attributes", s.Attributes)
		q.Attributes = s.Attributes
	}
	q.PageSize = v.pageSize(s.PageSize)
	return q, v.err()
}

// ListMyListings pages through the caller's own listings, newest first:
// every status, or status. The pages come from the search store and are
// cached like SearchListings's, under a key that names the caller: only
// the caller's session can ask for them.
func (q *Queries) ListMyListings(ctx context.Context, caller uuid.UUID, status string, pageSize int32, pageToken, token string) ([]ListingView, string, error) {
	var v violations
	sq := search.Query{SellerID: caller.String(), Status: status, Sort: search.SortNewest, PageToken: pageToken}
	switch status {
	case "":
		sq.Status = search.StatusAny
	case StatusAvailable, StatusSold, StatusWithdrawn:
	default:
		v.add("status", "must be AVAILABLE, SOLD or WITHDRAWN")
	}
	sq.PageSize = v.pageSize(pageSize)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	return q.searchPage(ctx, sq, token)
}

// SearchListings finds listings by keywords and filters, a page at a time,
// from the search store. Pages are cached under the listings page epoch,
// which the CDC bumps on every listing change.
func (q *Queries) SearchListings(ctx context.Context, s ListingSearch, token string) ([]ListingView, string, error) {
	sq, err := planSearch(s)
	if err != nil {
		return nil, "", err
	}
	return q.searchPage(ctx, sq, token)
}

// searchPage reads one page of a planned search through the page cache,
// once the read side has reached token.
func (q *Queries) searchPage(ctx context.Context, sq search.Query, token string) ([]ListingView, string, error) {
	ctx, err := q.awaitToken(ctx, token)
	if err != nil {
		return nil, "", err
	}
	key := q.deps.Cache.CurrentPageKey(ctx, readstore.Listings, digest(sq))
	load := func(ctx context.Context) (search.Page, []byte, uint64, error) {
		b, lsn, err := q.deps.Search.SearchPage(ctx, sq)
		if err != nil {
			return search.Page{}, nil, 0, err
		}
		page, err := search.DecodePage(b)
		return page, b, uint64(lsn), err
	}
	page, err := cache.ReadThrough(ctx, q.deps.Cache, cache.Pages, key, load, search.DecodePage)
	if err != nil {
		return nil, "", searchErr(err)
	}
	out := make([]ListingView, 0, len(page.Listings))
	for _, l := range page.Listings {
		v, err := q.listingView(ctx, l.Document())
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	return out, page.Next, nil
}

// CategoryCount is a category with its available listings.
type CategoryCount struct {
	Name           string
	AvailableCount int64
}

// ListCategories lists the categories that have available listings, by
// name, with their counts, as the search projection keeps them. They are
// cached under the listings page epoch, like the search pages.
func (q *Queries) ListCategories(ctx context.Context, token string) ([]CategoryCount, error) {
	ctx, err := q.awaitToken(ctx, token)
	if err != nil {
		return nil, err
	}
	decode := func(b []byte) ([]search.Category, error) {
		var cs []search.Category
		err := json.Unmarshal(b, &cs)
		return cs, err
	}
	load := func(ctx context.Context) ([]search.Category, []byte, uint64, error) {
		b, lsn, err := q.deps.Search.CategoriesPage(ctx)
		if err != nil {
			return nil, nil, 0, err
		}
		cs, err := decode(b)
		return cs, b, uint64(lsn), err
	}
	key := q.deps.Cache.CurrentPageKey(ctx, readstore.Listings, "categories")
	cs, err := cache.ReadThrough(ctx, q.deps.Cache, cache.Pages, key, load, decode)
	if err != nil {
		return nil, searchErr(err)
	}
	out := make([]CategoryCount, len(cs))
	for i, c := range cs {
		out[i] = CategoryCount{Name: c.Name, AvailableCount: c.Count}
	}
	return out, nil
}

// searchErr maps what the search store refuses to the field it blames.
func searchErr(err error) error {
	var fe *search.FieldError
	if errors.As(err, &fe) {
		var v violations
		v.add(fe.Field, "%s", fe.Reason)
		return v.err()
	}
	return readErr("listings", err)
}
