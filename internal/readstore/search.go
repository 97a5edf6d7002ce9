package readstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Sort orders of a listing search. Ties break newest first (by _id, a
// UUIDv7, which orders by creation), so every order is total and keyset
// paging never skips or repeats a listing.
type Sort int

const (
	SortNewest Sort = iota
	SortPriceAsc
	SortPriceDesc
)

// ListingFilter narrows a search. Zero fields match everything.
type ListingFilter struct {
	Status    string
	Keywords  []string // normalized; every one must match
	Category  string
	Condition string
	SellerID  string
	Currency  string // set when a price bound is
	MinPrice  *int64
	MaxPrice  *int64
	Attrs     []string // "key=value"; every one must match
}

// ListingPage is a page of a listing search as the caches keep it:
// documents, not views, because image URLs expire and are made at read
// time. Next is the page token of the page after it, "" for the last.
type ListingPage struct {
	Listings []Listing `bson:"listings"`
	Next     string    `bson:"next"`
}

// Cursor is the position after the last listing of a page.
type Cursor struct {
	CreatedAt time.Time
	Price     int64
	ID        string
}

// Query is the filter a search sends: one document of top-level conditions
// (an implicit AND). FerretDB pushes plain top-level equalities down to
// Postgres, while it evaluates an explicit $and in memory.
func (f ListingFilter) Query() bson.D {
	q := bson.D{{Key: "status", Value: f.Status}}
	if f.Category != "" {
		q = append(q, bson.E{Key: "category", Value: f.Category})
	}
	if f.Condition != "" {
		q = append(q, bson.E{Key: "condition", Value: f.Condition})
	}
	if len(f.Keywords) > 0 {
		// A plain equality on an array matches an element, and FerretDB
		// pushes it down to Postgres, where $all would be evaluated in
		// memory after reading every listing. So one word, the longest
		// (likely the rarest), is an equality; the others must match too,
		// and are checked among the listings that have it.
		first := 0
		for i, w := range f.Keywords {
			if len(w) > len(f.Keywords[first]) {
				first = i
			}
		}
		q = append(q, bson.E{Key: "keywords", Value: f.Keywords[first]})
		if rest := slices.Delete(slices.Clone(f.Keywords), first, first+1); len(rest) > 0 {
			q = append(q, bson.E{Key: "$and", Value: bson.A{bson.D{{Key: "keywords", Value: bson.D{{Key: "$all", Value: rest}}}}}})
		}
	}
	if len(f.Attrs) > 0 {
		q = append(q, bson.E{Key: "attribute_pairs", Value: bson.D{{Key: "$all", Value: f.Attrs}}})
	}
	if f.SellerID != "" {
		q = append(q, bson.E{Key: "seller.id", Value: f.SellerID})
	}
	if f.Currency != "" {
		q = append(q, bson.E{Key: "price.currency", Value: f.Currency})
	}
	var price bson.D
	if f.MinPrice != nil {
		price = append(price, bson.E{Key: "$gte", Value: *f.MinPrice})
	}
	if f.MaxPrice != nil {
		price = append(price, bson.E{Key: "$lte", Value: *f.MaxPrice})
	}
	if price != nil {
		q = append(q, bson.E{Key: "price.minor", Value: price})
	}
	return q
}

// after is the keyset condition: strictly past the cursor in sort order.
func after(s Sort, c *Cursor) bson.D {
	idBefore := bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: c.ID}}}}
	switch s {
	case SortPriceAsc, SortPriceDesc:
		op := "$gt"
		if s == SortPriceDesc {
			op = "$lt"
		}
		return bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "price.minor", Value: bson.D{{Key: op, Value: c.Price}}}},
			bson.D{{Key: "price.minor", Value: c.Price}, idBefore[0]},
		}}}
	default:
		return bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: c.CreatedAt}}}},
			bson.D{{Key: "created_at", Value: c.CreatedAt}, idBefore[0]},
		}}}
	}
}

func sortSpec(s Sort) bson.D {
	switch s {
	case SortPriceAsc:
		return bson.D{{Key: "price.minor", Value: 1}, {Key: "_id", Value: -1}}
	case SortPriceDesc:
		return bson.D{{Key: "price.minor", Value: -1}, {Key: "_id", Value: -1}}
	default:
		return bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}
	}
}

// SearchListings returns up to limit listings after the cursor (nil: from
// the start) in the given order, and whether more follow.
func (s *Model) SearchListings(ctx context.Context, f ListingFilter, order Sort, cur *Cursor, limit int) ([]Listing, bool, error) {
	q := f.Query()
	if cur != nil {
		q = append(q, after(order, cur)...) // a top-level $or
	}
	return findPage[Listing](ctx, s, Listings, q, sortSpec(order), limit)
}

// findPage reads one more document than asked, to know whether a next
// page exists. It sends the find command itself so that it can carry
// maxTimeMS: the driver sends none for cursor-returning finds, and a
// server whose client gave up would otherwise keep working on the query.
func findPage[T any](ctx context.Context, s *Model, collection string, q, sort bson.D, limit int) ([]T, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	cmd := bson.D{
		{Key: "find", Value: s.Physical(collection)},
		{Key: "filter", Value: q},
		{Key: "sort", Value: sort},
		{Key: "limit", Value: int64(limit + 1)},
		{Key: "batchSize", Value: int64(limit + 1)},
		{Key: "singleBatch", Value: true},
		{Key: "maxTimeMS", Value: s.OpTimeout.Milliseconds()},
	}
	var res struct {
		Cursor struct {
			FirstBatch []T `bson:"firstBatch"`
		} `bson:"cursor"`
	}
	if err := s.db.RunCommand(ctx, cmd).Decode(&res); err != nil {
		return nil, false, classify(fmt.Errorf("query %s: %w", collection, err))
	}
	out := res.Cursor.FirstBatch
	if out == nil {
		out = []T{}
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}
