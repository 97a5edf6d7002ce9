package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Sort is the order of a search's results. Every order is total: ties
// break by id, so keyset paging never skips or repeats a listing.
type Sort int

const (
	// SortDefault is SortRelevance when the query has text, else SortNewest.
	SortDefault   Sort = iota
	SortNewest         // created_at, id: descending
	SortPriceAsc       // price, id: ascending
	SortPriceDesc      // price, id: descending
	SortRelevance      // rank, id: descending, over the newest RelevanceCandidates matches
)

func (s Sort) String() string {
	return [...]string{"default", "newest", "price_asc", "price_desc", "relevance"}[s]
}

// Page sizes.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// StatusAvailable is the status a search without one filters on, and the
// one the category counts count.
const StatusAvailable = "AVAILABLE"

// StatusAny matches a listing in any status (deleted listings' tombstones
// never match). Only a seller's own listings are searched with it.
const StatusAny = "*"

// Query is one SearchListings request. Zero fields match everything.
type Query struct {
	// Text is keywords: every word must match, by stem, in the title or
	// the description.
	Text       string
	Category   string
	Condition  string
	SellerID   string
	Currency   string // required with a price bound
	MinPrice   *int64
	MaxPrice   *int64
	Attributes map[string]string // each must equal the listing's
	Status     string            // "" means StatusAvailable; StatusAny for every status
	Sort       Sort
	PageSize   int    // 0 means DefaultPageSize
	PageToken  string // "" for the first page
}

// ErrInvalid marks a query the store refuses; the message says why.
var ErrInvalid = errors.New("invalid search")

// FieldError is an invalid field of a query.
type FieldError struct {
	Field  string // as in the request: "page_token", "page_size", "sort"
	Reason string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Page is one page of results.
type Page struct {
	Listings []Listing `json:"listings"`
	// Next is the token of the next page; empty on the last.
	Next string `json:"next,omitempty"`
	// LSN is the generation's applied position when the page was read:
	// every write up to it is in the page.
	LSN int64 `json:"lsn"`
}

// plan is a validated query.
type plan struct {
	q      Query
	sort   Sort
	limit  int
	digest string
	cursor *cursor
}

func (s *Store) plan(q Query) (plan, error) {
	p := plan{q: q, sort: q.Sort, limit: q.PageSize}
	if p.q.Status == "" {
		p.q.Status = StatusAvailable
	}
	p.q.Text = strings.TrimSpace(q.Text)
	if len(p.q.Attributes) == 0 {
		p.q.Attributes = nil // no filter, however spelled: one digest
	}
	switch {
	case p.limit == 0:
		p.limit = DefaultPageSize
	case p.limit < 1 || p.limit > MaxPageSize:
		return p, &FieldError{"page_size", fmt.Sprintf("must be 0 (for %d) to %d", DefaultPageSize, MaxPageSize)}
	}
	if p.sort == SortDefault {
		p.sort = SortNewest
		if p.q.Text != "" {
			p.sort = SortRelevance
		}
	}
	if p.sort < SortDefault || p.sort > SortRelevance {
		return p, &FieldError{"sort", "is not a known order"}
	}
	if p.sort == SortRelevance && p.q.Text == "" {
		return p, &FieldError{"sort", "by relevance needs a query"}
	}
	if q.SellerID != "" {
		if _, err := uuid.Parse(q.SellerID); err != nil {
			return p, &FieldError{"seller_id", "is not a listing id"}
		}
	}
	if (q.MinPrice != nil || q.MaxPrice != nil) && q.Currency == "" {
		return p, &FieldError{"min_price", "needs a currency"}
	}
	p.digest = digest(p.q, p.sort)
	c, err := decodeToken(q.PageToken, p.digest, p.sort)
	if err != nil {
		return p, err
	}
	p.cursor = c
	return p, nil
}

// Search returns one page of listings.
func (s *Store) Search(ctx context.Context, q Query) (Page, error) {
	p, err := s.plan(q)
	if err != nil {
		return Page{}, err
	}
	sql, args := s.sql(p)
	if q.Text != "" {
		// A keyword search waits for a slot, not for a connection that
		// every other shape needs too.
		if err := s.keywordSlots.Acquire(ctx, 1); err != nil {
			return Page{}, fmt.Errorf("search: waiting for a keyword slot: %w", err)
		}
		defer s.keywordSlots.Release(1)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return Page{}, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	page := Page{Listings: []Listing{}}
	var (
		ranks []float32
		first *boundary
	)
	for rows.Next() {
		if rows.RawValues()[1] == nil { // the generation's row alone: nothing matched
			if err := rows.Scan(&page.LSN, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil); err != nil {
				return Page{}, fmt.Errorf("search: %w", err)
			}
			continue
		}
		var (
			l            Listing
			id, sellerID *string
			attrs, media []byte
			rank         *float32
			bAt          *time.Time
			bID          *string
		)
		if err := rows.Scan(&page.LSN, &id, &l.LSN, &l.Status, &l.Version, &sellerID, &l.Seller.DisplayName, &l.Seller.RatingAverage,
			&l.Seller.RatingCount, &l.Title, &l.Description, &l.Category, &l.Condition, &l.Price.Currency, &l.Price.Minor,
			&attrs, &media, &l.CreatedAt, &l.UpdatedAt, &rank, &bAt, &bID); err != nil {
			return Page{}, fmt.Errorf("search: %w", err)
		}
		l.ID = *id
		if err := finish(&l, sellerID, attrs, media); err != nil {
			return Page{}, fmt.Errorf("search: %w", err)
		}
		page.Listings = append(page.Listings, l)
		if rank != nil {
			ranks = append(ranks, *rank)
		}
		if bAt != nil && bID != nil {
			first = &boundary{At: bAt.UnixMicro(), ID: *bID}
		}
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("search: %w", err)
	}
	if len(page.Listings) > p.limit {
		page.Listings = page.Listings[:p.limit]
		l := page.Listings[p.limit-1]
		c := cursor{ID: l.ID}
		switch p.sort {
		case SortNewest:
			c.At = l.CreatedAt.UnixMicro()
		case SortPriceAsc, SortPriceDesc:
			c.Price = l.Price.Minor
		case SortRelevance:
			c.Rank = ranks[p.limit-1]
			// The candidate set is fixed by the first page.
			c.Boundary = first
			if p.cursor != nil {
				c.Boundary = p.cursor.Boundary
			}
		}
		page.Next = encodeToken(p.digest, p.sort, c)
	}
	return page, nil
}

// SearchPage is Search in the shape of a read-through loader: the page
// encoded (DecodePage reads it back) and the position it reflects.
func (s *Store) SearchPage(ctx context.Context, q Query) ([]byte, int64, error) {
	page, err := s.Search(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	b, err := json.Marshal(page)
	if err != nil {
		return nil, 0, fmt.Errorf("search: encode page: %w", err)
	}
	return b, page.LSN, nil
}

// DecodePage reads a page SearchPage encoded.
func DecodePage(b []byte) (Page, error) {
	var p Page
	if err := json.Unmarshal(b, &p); err != nil {
		return Page{}, fmt.Errorf("search: decode page: %w", err)
	}
	return p, nil
}

// Category is a category with available listings.
type Category struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// Categories returns the categories that have available listings, by
// name, with their counts, and the position they reflect.
func (s *Store) Categories(ctx context.Context) ([]Category, int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT g.applied_lsn, c.category, c.available_count
		FROM search_generations g LEFT JOIN search_categories c ON c.available_count > 0
		WHERE g.state = 'live' ORDER BY c.category`)
	if err != nil {
		return nil, 0, fmt.Errorf("search: categories: %w", err)
	}
	defer rows.Close()
	out := []Category{}
	var lsn int64
	found := false
	for rows.Next() {
		var name *string
		var n *int64
		if err := rows.Scan(&lsn, &name, &n); err != nil {
			return nil, 0, fmt.Errorf("search: categories: %w", err)
		}
		found = true
		if name != nil {
			out = append(out, Category{Name: *name, Count: *n})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("search: categories: %w", err)
	}
	if !found {
		return nil, 0, ErrNoGeneration
	}
	return out, lsn, nil
}

// CategoriesPage is Categories in the shape of a read-through loader.
func (s *Store) CategoriesPage(ctx context.Context) ([]byte, int64, error) {
	cs, lsn, err := s.Categories(ctx)
	if err != nil {
		return nil, 0, err
	}
	b, err := json.Marshal(cs)
	return b, lsn, err
}
