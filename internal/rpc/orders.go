package rpc

import (
	"context"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// OrderHandler serves swapmeet.v1.OrderService.
type OrderHandler struct {
	// Queries arrive with the read side.
	swapmeetv1connect.UnimplementedOrderServiceHandler
	app *app.App
}

func (h *OrderHandler) PlaceOrder(ctx context.Context, req *connect.Request[swapmeetv1.PlaceOrderRequest]) (*connect.Response[swapmeetv1.PlaceOrderResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	o, err := h.app.Commands.PlaceOrder(ctx, c.userID, req.Msg.GetListingIds(), req.Msg.GetIdempotencyKey())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.PlaceOrderResponse{
		OrderId: o.ID.String(), Total: moneyOut(o.Total), ConsistencyToken: o.ConsistencyToken,
	}), nil
}

// transitionFunc is the shape of every order state change in the app.
type transitionFunc func(ctx context.Context, caller uuid.UUID, orderID string) (string, error)

func runTransition(ctx context.Context, orderID string, fn transitionFunc) (string, error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return "", err
	}
	return fn(ctx, c.userID, orderID)
}

func (h *OrderHandler) MarkOrderPaid(ctx context.Context, req *connect.Request[swapmeetv1.MarkOrderPaidRequest]) (*connect.Response[swapmeetv1.MarkOrderPaidResponse], error) {
	token, err := runTransition(ctx, req.Msg.GetOrderId(), h.app.Commands.MarkOrderPaid)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.MarkOrderPaidResponse{ConsistencyToken: token}), nil
}

func (h *OrderHandler) MarkOrderShipped(ctx context.Context, req *connect.Request[swapmeetv1.MarkOrderShippedRequest]) (*connect.Response[swapmeetv1.MarkOrderShippedResponse], error) {
	token, err := runTransition(ctx, req.Msg.GetOrderId(), h.app.Commands.MarkOrderShipped)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.MarkOrderShippedResponse{ConsistencyToken: token}), nil
}

func (h *OrderHandler) ConfirmDelivery(ctx context.Context, req *connect.Request[swapmeetv1.ConfirmDeliveryRequest]) (*connect.Response[swapmeetv1.ConfirmDeliveryResponse], error) {
	token, err := runTransition(ctx, req.Msg.GetOrderId(), h.app.Commands.ConfirmDelivery)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.ConfirmDeliveryResponse{ConsistencyToken: token}), nil
}

func (h *OrderHandler) CancelOrder(ctx context.Context, req *connect.Request[swapmeetv1.CancelOrderRequest]) (*connect.Response[swapmeetv1.CancelOrderResponse], error) {
	token, err := runTransition(ctx, req.Msg.GetOrderId(), h.app.Commands.CancelOrder)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.CancelOrderResponse{ConsistencyToken: token}), nil
}
