package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/consistency"
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

// CreateListing puts an item up for sale.
func (c *Commands) CreateListing(ctx context.Context, seller uuid.UUID, in ListingInput) (Written, error) {
	var v violations
	in = v.listing(in, func(string) bool { return true })
	if err := v.err(); err != nil {
		return Written{}, err
	}
	attrs, err := attributesJSON(in.Attributes)
	if err != nil {
		return Written{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Written{}, err
	}
	var version int64
	commit, err := c.deps.Store.ExecTx(ctx, pgx.TxOptions{}, func(q *sqlc.Queries) error {
		if err := c.checkListingQuotas(ctx, q, seller); err != nil {
			return err
		}
		version, err = q.CreateListing(ctx, sqlc.CreateListingParams{
			ID: id, SellerID: seller, Title: in.Title, Description: in.Description, Category: in.Category,
			Condition: in.Condition, PriceCurrency: in.Price.Currency, PriceMinor: in.Price.Minor, Attributes: attrs,
		})
		return err
	})
	if err != nil {
		return Written{}, fmt.Errorf("create listing: %w", err)
	}
	return Written{ID: id, Version: version, ConsistencyToken: consistency.Token(commit.LSN)}, nil
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
	if len(paths) == 0 {
		v.add("update_mask", "must name the fields to change: %v", ListingPaths)
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
	commit, err := c.deps.Store.ExecTx(ctx, pgx.TxOptions{}, func(q *sqlc.Queries) error {
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
	return Written{ID: id, Version: version, ConsistencyToken: consistency.Token(commit.LSN)}, nil
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
	commit, err := c.deps.Store.ExecTx(ctx, pgx.TxOptions{}, func(q *sqlc.Queries) error {
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
	return Written{ID: id, Version: version, ConsistencyToken: consistency.Token(commit.LSN)}, nil
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
	if errors.Is(err, pgx.ErrNoRows) {
		return errorf(CodeNotFound, "listing not found")
	}
	if err != nil {
		return err
	}
	switch {
	case l.SellerID != seller:
		return errorf(CodePermissionDenied, "only the seller may change this listing")
	case l.Status != StatusAvailable:
		return errorf(CodeFailedPrecondition, "the listing is %s; only an AVAILABLE listing can be changed", l.Status)
	case expectedVersion != anyVersion && l.Version != expectedVersion:
		return errorf(CodeConflict, "the listing is at version %d, not %d: reload it and retry", l.Version, expectedVersion)
	}
	return nil
}

func attributesJSON(m map[string]string) ([]byte, error) {
	if m == nil {
		m = map[string]string{}
	}
	return json.Marshal(m)
}
