package rpc

import (
	"context"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// ReviewHandler serves swapmeet.v1.ReviewService.
type ReviewHandler struct {
	// ListSellerReviews arrives with the read side.
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
