package rpc

import (
	"context"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// ListingHandler serves swapmeet.v1.ListingService.
type ListingHandler struct {
	// Queries and media arrive with the read side and the media store.
	swapmeetv1connect.UnimplementedListingServiceHandler
	app *app.App
}

func (h *ListingHandler) CreateListing(ctx context.Context, req *connect.Request[swapmeetv1.CreateListingRequest]) (*connect.Response[swapmeetv1.CreateListingResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	w, err := h.app.Commands.CreateListing(ctx, c.userID, app.ListingInput{
		Title: m.GetTitle(), Description: m.GetDescription(), Category: m.GetCategory(),
		Condition: conditionName(m.GetCondition()), Price: moneyIn(m.GetPrice()), Attributes: m.GetAttributes(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.CreateListingResponse{
		ListingId: w.ID.String(), Version: w.Version, ConsistencyToken: w.ConsistencyToken,
	}), nil
}

func (h *ListingHandler) UpdateListing(ctx context.Context, req *connect.Request[swapmeetv1.UpdateListingRequest]) (*connect.Response[swapmeetv1.UpdateListingResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	w, err := h.app.Commands.UpdateListing(ctx, c.userID, m.GetListingId(), m.GetExpectedVersion(), app.ListingInput{
		Title: m.GetTitle(), Description: m.GetDescription(), Category: m.GetCategory(),
		Condition: conditionName(m.GetCondition()), Price: moneyIn(m.GetPrice()), Attributes: m.GetAttributes(),
	}, m.GetUpdateMask().GetPaths())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.UpdateListingResponse{Version: w.Version, ConsistencyToken: w.ConsistencyToken}), nil
}

func (h *ListingHandler) WithdrawListing(ctx context.Context, req *connect.Request[swapmeetv1.WithdrawListingRequest]) (*connect.Response[swapmeetv1.WithdrawListingResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	w, err := h.app.Commands.WithdrawListing(ctx, c.userID, req.Msg.GetListingId(), req.Msg.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.WithdrawListingResponse{ConsistencyToken: w.ConsistencyToken}), nil
}
