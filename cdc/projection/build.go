package projection

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// A Collection is the projection of one collection: it turns Postgres rows
// into that collection's documents.
// build re-reads the current shape of the documents with the given ids,
// stamping each as st says; ids it returns no document for no longer
// exist. all pages through every id in order; exist says which of the
// given ids still have a row.
type Collection struct {
	collection string
	index      int // in touched's arrays
	docType    reflect.Type
	build      func(ctx context.Context, q *sqlc.Queries, ids []uuid.UUID, st stamper) (map[uuid.UUID]any, error)
	all        func(ctx context.Context, q *sqlc.Queries, after uuid.UUID, limit int32) ([]uuid.UUID, error)
	exist      func(q *sqlc.Queries, ctx context.Context, ids []uuid.UUID) ([]uuid.UUID, error)
}

var projections = []Collection{
	{readstore.Users, cUsers, reflect.TypeFor[readstore.User](), buildUsers, func(ctx context.Context, q *sqlc.Queries, after uuid.UUID, n int32) ([]uuid.UUID, error) {
		return q.ListAllUserIDs(ctx, sqlc.ListAllUserIDsParams{After: after, Batch: n})
	}, (*sqlc.Queries).ExistingUserIDs},
	{readstore.Listings, cListings, reflect.TypeFor[readstore.Listing](), buildListings, func(ctx context.Context, q *sqlc.Queries, after uuid.UUID, n int32) ([]uuid.UUID, error) {
		return q.ListAllListingIDs(ctx, sqlc.ListAllListingIDsParams{After: after, Batch: n})
	}, (*sqlc.Queries).ExistingListingIDs},
	{readstore.Orders, cOrders, reflect.TypeFor[readstore.Order](), buildOrders, func(ctx context.Context, q *sqlc.Queries, after uuid.UUID, n int32) ([]uuid.UUID, error) {
		return q.ListAllOrderIDs(ctx, sqlc.ListAllOrderIDsParams{After: after, Batch: n})
	}, (*sqlc.Queries).ExistingOrderIDs},
	{readstore.Reviews, cReviews, reflect.TypeFor[readstore.Review](), buildReviews, func(ctx context.Context, q *sqlc.Queries, after uuid.UUID, n int32) ([]uuid.UUID, error) {
		return q.ListAllReviewIDs(ctx, sqlc.ListAllReviewIDsParams{After: after, Batch: n})
	}, (*sqlc.Queries).ExistingReviewIDs},
}

// For returns the projection of a collection (readstore.Users, ...). It
// panics on a name it does not know.
func For(collection string) Collection {
	for _, p := range projections {
		if p.collection == collection {
			return p
		}
	}
	panic("no projection for " + collection)
}

// Name is the collection's logical name.
func (c Collection) Name() string { return c.collection }

// DocType is the Go type of the collection's documents.
func (c Collection) DocType() reflect.Type { return c.docType }

// IDs pages through the ids of every source row, in order, starting after
// after.
func (c Collection) IDs(ctx context.Context, q *sqlc.Queries, after uuid.UUID, limit int32) ([]uuid.UUID, error) {
	return c.all(ctx, q, after, limit)
}

// Build reads the current documents with the given ids, stamping every one
// with lsn (a bulk load's snapshot position, or 0 where stamps do not
// matter); ids it returns no document for no longer exist.
func (c Collection) Build(ctx context.Context, q *sqlc.Queries, ids []uuid.UUID, lsn int64) (map[uuid.UUID]any, error) {
	return c.build(ctx, q, ids, constStamp(lsn))
}

// ms rounds a time the way BSON stores it, so that documents compare equal
// after a round trip through the store.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func summary(id uuid.UUID, name string, avg float64, n int32) readstore.UserSummary {
	return readstore.UserSummary{ID: id.String(), DisplayName: name, RatingAverage: avg, RatingCount: n}
}

func buildUsers(ctx context.Context, q *sqlc.Queries, ids []uuid.UUID, st stamper) (map[uuid.UUID]any, error) {
	rows, err := q.ListUserProjections(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	out := make(map[uuid.UUID]any, len(rows))
	for _, r := range rows {
		out[r.ID] = readstore.User{
			ID: r.ID.String(), DisplayName: r.DisplayName, Bio: r.Bio, JoinedAt: ms(r.CreatedAt),
			RatingAverage: r.RatingAverage, RatingCount: r.RatingCount,
			ActiveListingCount: r.ActiveListingCount, SoldCount: r.SoldCount, LSN: st.doc(cUsers, r.ID),
		}
	}
	return out, nil
}

func buildListings(ctx context.Context, q *sqlc.Queries, ids []uuid.UUID, st stamper) (map[uuid.UUID]any, error) {
	rows, err := q.ListListingProjections(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read listings: %w", err)
	}
	out := make(map[uuid.UUID]any, len(rows))
	for _, r := range rows {
		attrs := map[string]string{}
		if err := json.Unmarshal(r.Attributes, &attrs); err != nil {
			return nil, fmt.Errorf("listing %s attributes: %w", r.ID, err)
		}
		m, err := listingMedia(r.Media)
		if err != nil {
			return nil, fmt.Errorf("listing %s media: %w", r.ID, err)
		}
		out[r.ID] = readstore.Listing{
			ID:     r.ID.String(),
			Seller: summary(r.SellerID, r.SellerName, r.SellerRatingAverage, r.SellerRatingCount),
			Title:  r.Title, Description: r.Description, Category: r.Category, Condition: r.Condition,
			Price:      readstore.Money{Currency: r.PriceCurrency, Minor: r.PriceMinor},
			Attributes: attrs,
			Status:     r.Status, Version: r.Version, Media: m,
			CreatedAt: ms(r.CreatedAt), UpdatedAt: ms(r.UpdatedAt),
			LSN: max(st.doc(cListings, r.ID), st.summary(r.SellerID)),
		}
	}
	return out, nil
}

// listingMedia decodes the images ListListingProjections aggregates.
func listingMedia(raw []byte) ([]readstore.Media, error) {
	var rows []struct {
		ID           string  `json:"id"`
		ObjectKey    string  `json:"object_key"`
		ContentType  string  `json:"content_type"`
		SizeBytes    int64   `json:"size_bytes"`
		Width        *int32  `json:"width"`
		Height       *int32  `json:"height"`
		ThumbnailKey *string `json:"thumbnail_key"`
	}
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, err
	}
	media := make([]readstore.Media, len(rows))
	for i, m := range rows {
		media[i] = readstore.Media{ID: m.ID, ContentType: m.ContentType, SizeBytes: m.SizeBytes,
			Width: deref(m.Width), Height: deref(m.Height), ObjectKey: m.ObjectKey, ThumbnailKey: deref(m.ThumbnailKey)}
	}
	return media, nil
}

func buildOrders(ctx context.Context, q *sqlc.Queries, ids []uuid.UUID, st stamper) (map[uuid.UUID]any, error) {
	rows, err := q.ListOrderProjections(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	itemRows, err := q.ListOrderItemProjections(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read order items: %w", err)
	}
	items := map[uuid.UUID][]readstore.OrderItem{}
	itemStamps := map[uuid.UUID]int64{}
	for _, i := range itemRows {
		itemStamps[i.OrderID] = max(itemStamps[i.OrderID], st.media(i.ListingID))
		var thumb *readstore.Media
		if i.MediaID != "" {
			thumb = &readstore.Media{ID: i.MediaID, ContentType: i.ContentType, SizeBytes: i.SizeBytes,
				Width: i.Width, Height: i.Height, ObjectKey: i.ObjectKey, ThumbnailKey: i.ThumbnailKey}
		}
		items[i.OrderID] = append(items[i.OrderID], readstore.OrderItem{
			ListingID: i.ListingID.String(), Title: i.Title,
			Price: readstore.Money{Currency: i.PriceCurrency, Minor: i.PriceMinor}, Thumbnail: thumb,
		})
	}
	out := make(map[uuid.UUID]any, len(rows))
	for _, r := range rows {
		its := items[r.ID]
		if its == nil {
			its = []readstore.OrderItem{}
		}
		for k := range its {
			its[k].SellerDisplayName = r.SellerName
		}
		history := []readstore.StatusChange{{Status: "PENDING", At: ms(r.CreatedAt)}}
		for _, h := range []struct {
			status string
			at     *time.Time
		}{{"PAID", r.PaidAt}, {"SHIPPED", r.ShippedAt}, {"DELIVERED", r.DeliveredAt}, {"CANCELLED", r.CancelledAt}} {
			if h.at != nil {
				history = append(history, readstore.StatusChange{Status: h.status, At: ms(*h.at)})
			}
		}
		sort.SliceStable(history, func(i, j int) bool { return history[i].At.Before(history[j].At) })
		out[r.ID] = readstore.Order{
			ID:     r.ID.String(),
			Buyer:  summary(r.BuyerID, r.BuyerName, r.BuyerRatingAverage, r.BuyerRatingCount),
			Seller: summary(r.SellerID, r.SellerName, r.SellerRatingAverage, r.SellerRatingCount),
			Status: r.Status, Total: readstore.Money{Currency: r.TotalCurrency, Minor: r.TotalMinor},
			Items: its, History: history, CreatedAt: ms(r.CreatedAt), UpdatedAt: ms(r.UpdatedAt),
			LSN: max(st.doc(cOrders, r.ID), st.summary(r.BuyerID), st.summary(r.SellerID), itemStamps[r.ID]),
		}
	}
	return out, nil
}

func buildReviews(ctx context.Context, q *sqlc.Queries, ids []uuid.UUID, st stamper) (map[uuid.UUID]any, error) {
	rows, err := q.ListReviewProjections(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read reviews: %w", err)
	}
	out := make(map[uuid.UUID]any, len(rows))
	for _, r := range rows {
		out[r.ID] = readstore.Review{
			ID: r.ID.String(), OrderID: r.OrderID.String(), SellerID: r.SellerID.String(),
			Author: summary(r.AuthorID, r.AuthorName, r.AuthorRatingAverage, r.AuthorRatingCount),
			Rating: int32(r.Rating), Comment: r.Comment, CreatedAt: ms(r.CreatedAt),
			LSN: max(st.doc(cReviews, r.ID), st.summary(r.AuthorID)),
		}
	}
	return out, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
