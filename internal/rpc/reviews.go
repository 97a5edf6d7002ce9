package rpc

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// ReviewHandler serves swapmeet.v1.ReviewService.
type ReviewHandler struct {
	swapmeetv1connect.UnimplementedReviewServiceHandler
	app *app.App
}

func (h *ReviewHandler) CreateReview(ctx context.Context, req *connect.Request[swapmeetv1.CreateReviewRequest]) (*connect.Response[swapmeetv1.CreateReviewResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	w, err := h.app.Commands.CreateReview(ctx, c.userID, req.Msg.GetOrderId(), req.Msg.GetRating(), req.Msg.GetComment())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.CreateReviewResponse{ReviewId: w.ID.String(), ConsistencyToken: w.ConsistencyToken}), nil
}

func (h *ReviewHandler) ListSellerReviews(ctx context.Context, req *connect.Request[swapmeetv1.ListSellerReviewsRequest]) (*connect.Response[swapmeetv1.ListSellerReviewsResponse], error) {
	m := req.Msg
	r, err := h.app.Queries.ListSellerReviews(ctx, m.GetSellerId(), m.GetPageSize(), m.GetPageToken(), m.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	out := &swapmeetv1.ListSellerReviewsResponse{RatingAverage: r.RatingAverage, RatingCount: r.RatingCount, NextPageToken: r.Next}
	for _, d := range r.Reviews {
		out.Reviews = append(out.Reviews, &swapmeetv1.Review{
			ReviewId: d.ID, OrderId: d.OrderID, SellerId: d.SellerID, Author: summaryProto(d.Author),
			Rating: d.Rating, Comment: d.Comment, CreatedAt: timestamppb.New(d.CreatedAt),
		})
	}
	return connect.NewResponse(out), nil
}
