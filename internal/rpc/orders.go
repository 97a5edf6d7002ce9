package rpc

import (
	"context"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/live"
)

// OrderHandler serves swapmeet.v1.OrderService.
type OrderHandler struct {
	swapmeetv1connect.UnimplementedOrderServiceHandler
	app  *app.App
	live *live.Hub
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

func (h *OrderHandler) GetOrder(ctx context.Context, req *connect.Request[swapmeetv1.GetOrderRequest]) (*connect.Response[swapmeetv1.GetOrderResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	o, err := h.app.Queries.GetOrder(ctx, c.userID, req.Msg.GetOrderId(), req.Msg.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.GetOrderResponse{Order: orderProto(o)}), nil
}

func (h *OrderHandler) ListOrders(ctx context.Context, req *connect.Request[swapmeetv1.ListOrdersRequest]) (*connect.Response[swapmeetv1.ListOrdersResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	role := ""
	switch m.GetRole() {
	case swapmeetv1.OrderRole_ORDER_ROLE_BUYER:
		role = app.RoleBuyer
	case swapmeetv1.OrderRole_ORDER_ROLE_SELLER:
		role = app.RoleSeller
	}
	status := ""
	if m.GetStatus() != swapmeetv1.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		status = strings.TrimPrefix(m.GetStatus().String(), "ORDER_STATUS_")
	}
	views, next, err := h.app.Queries.ListOrders(ctx, c.userID, role, status, m.GetPageSize(), m.GetPageToken(), m.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	out := &swapmeetv1.ListOrdersResponse{NextPageToken: next}
	for _, v := range views {
		out.Orders = append(out.Orders, orderProto(v))
	}
	return connect.NewResponse(out), nil
}

func orderProto(o app.OrderView) *swapmeetv1.Order {
	out := &swapmeetv1.Order{
		OrderId: o.ID, Buyer: summaryProto(o.Buyer), Seller: summaryProto(o.Seller),
		Status: orderStatusEnum(o.Status), Total: moneyOut(o.Total),
		CreatedAt: timestamppb.New(o.CreatedAt), UpdatedAt: timestamppb.New(o.UpdatedAt),
	}
	for _, it := range o.Items {
		item := &swapmeetv1.OrderItem{ListingId: it.ListingID, Title: it.Title, Price: moneyOut(it.Price), SellerDisplayName: it.SellerDisplayName}
		if it.Thumbnail != nil {
			item.Thumbnail = mediaProto(*it.Thumbnail)
		}
		out.Items = append(out.Items, item)
	}
	for _, h := range o.History {
		out.History = append(out.History, &swapmeetv1.OrderStatusChange{Status: orderStatusEnum(h.Status), At: timestamppb.New(h.At)})
	}
	return out
}
