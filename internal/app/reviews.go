package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// CreateReview lets the buyer of a delivered order review its seller, once.
func (c *Commands) CreateReview(ctx context.Context, author uuid.UUID, orderID string, rating int32, comment string) (Written, error) {
	var v violations
	oid := v.id("order_id", orderID)
	if rating < 1 || rating > 5 {
		v.add("rating", "must be 1 to 5")
	}
	v.text("comment", comment, commentRule)
	if err := v.err(); err != nil {
		return Written{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Written{}, err
	}
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: author.String()}, func(q *sqlc.Queries) error {
		// DELIVERED is final, so the order cannot change under us: no lock.
		o, err := q.FindOrderParties(ctx, oid)
		switch {
		case errors.Is(err, db.ErrNotFound), err == nil && o.BuyerID != author && o.SellerID != author:
			return errorf(CodeNotFound, "order not found")
		case err != nil:
			return err
		case o.BuyerID != author:
			return errorf(CodePermissionDenied, "only the buyer can review an order")
		case o.Status != OrderDelivered:
			return refusef(CodeFailedPrecondition, ReasonOrderNotInState, "the order is %s; it can be reviewed once DELIVERED", o.Status)
		}
		err = q.CreateReview(ctx, sqlc.CreateReviewParams{
			ID: id, OrderID: oid, SellerID: o.SellerID, AuthorID: author, Rating: int16(rating), Comment: comment,
		})
		if db.IsUniqueViolation(err, "reviews_order_id_key") {
			return refusef(CodeAlreadyExists, ReasonAlreadyReviewed, "this order has already been reviewed")
		}
		return err
	})
	if err != nil {
		return Written{}, fmt.Errorf("create review of order %s: %w", oid, err)
	}
	return Written{ID: id, ConsistencyToken: consistency.WriteToken(commit.Position())}, nil
}

// SellerReviews is a page of a seller's reviews with their overall rating.
type SellerReviews struct {
	Reviews       []ReviewView
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
	ctx, err := q.awaitToken(ctx, token)
	if err != nil {
		return SellerReviews{}, err
	}
	seller, err := getDoc[readstore.User](ctx, q, readstore.Users, sid.String(), "seller")
	if err != nil {
		return SellerReviews{}, err
	}
	docs, more, err := q.deps.Search.ListSellerReviews(ctx, sid.String(), cur, limit)
	if err != nil {
		return SellerReviews{}, readErr("reviews", err)
	}
	out := SellerReviews{Reviews: make([]ReviewView, 0, len(docs)), RatingAverage: seller.RatingAverage, RatingCount: seller.RatingCount}
	for _, d := range docs {
		out.Reviews = append(out.Reviews, reviewView(d))
	}
	if more {
		last := docs[len(docs)-1]
		out.Next = encodePageToken(query, readstore.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return out, nil
}
