package rpc

import (
	"context"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/live"
)

// The Watch streams of both services: the edge of package live.

func (h *ListingHandler) WatchListing(ctx context.Context, req *connect.Request[swapmeetv1.WatchListingRequest], stream *connect.ServerStream[swapmeetv1.WatchListingResponse]) error {
	st, err := streamOf(ctx, h.live, h.app)
	if err != nil {
		return err
	}
	return h.live.WatchListing(ctx, st, req.Msg.GetListingId(), req.Msg.GetResumeToken(), func(s live.ListingState) error {
		msg := &swapmeetv1.WatchListingResponse{ResumeToken: s.Token}
		if s.Listing != nil {
			msg.Listing = listingProto(*s.Listing)
		}
		return stream.Send(msg)
	})
}

func (h *OrderHandler) WatchOrders(ctx context.Context, req *connect.Request[swapmeetv1.WatchOrdersRequest], stream *connect.ServerStream[swapmeetv1.WatchOrdersResponse]) error {
	c, err := requireCaller(ctx)
	if err != nil {
		return err
	}
	role := ""
	switch req.Msg.GetRole() {
	case swapmeetv1.OrderRole_ORDER_ROLE_BUYER:
		role = app.RoleBuyer
	case swapmeetv1.OrderRole_ORDER_ROLE_SELLER:
		role = app.RoleSeller
	case swapmeetv1.OrderRole_ORDER_ROLE_UNSPECIFIED:
	default:
		return &app.Error{Code: app.CodeInvalid, Message: "invalid request: role: is not an order role",
			Violations: []app.FieldViolation{{Field: "role", Description: "is not an order role"}}}
	}
	st, err := streamOf(ctx, h.live, h.app)
	if err != nil {
		return err
	}
	return h.live.WatchOrders(ctx, st, c.userID, role, req.Msg.GetResumeToken(), func(s live.OrderState) error {
		msg := &swapmeetv1.WatchOrdersResponse{ResumeToken: s.Token, Resync: s.Resync}
		if s.Order != nil {
			msg.Order = orderProto(*s.Order)
		}
		return stream.Send(msg)
	})
}

// streamOf describes the caller's stream to the hub: whose streams it
// counts against, and, for a signed-in caller, the session it must keep.
func streamOf(ctx context.Context, hub *live.Hub, a *app.App) (live.Stream, error) {
	if hub == nil {
		return live.Stream{}, &app.Error{Code: app.CodeUnavailable, Message: "live updates are not served here"}
	}
	c, ok := callerFrom(ctx)
	if !ok {
		return live.Stream{Owner: "client " + app.ClientOf(ctx)}, nil
	}
	return live.Stream{
		Owner: "user " + c.userID.String(),
		Session: func(ctx context.Context) error {
			_, err := a.Commands.Authenticate(ctx, c.token)
			if app.ErrorCode(err) == app.CodeUnauthenticated {
				return &app.Error{Code: app.CodeUnauthenticated, Message: "the session ended: sign in again", Err: err}
			}
			return nil // a session store that is down ends nothing; ctx's end ends the stream anyway
		},
	}, nil
}
