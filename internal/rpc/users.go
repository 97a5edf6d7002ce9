package rpc

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
)

// UserHandler serves swapmeet.v1.UserService.
type UserHandler struct {
	app *app.App
}

func (h *UserHandler) SignUp(ctx context.Context, req *connect.Request[swapmeetv1.SignUpRequest]) (*connect.Response[swapmeetv1.SignUpResponse], error) {
	res, err := h.app.Commands.SignUp(ctx, req.Msg.GetEmail(), req.Msg.GetPassword(), req.Msg.GetDisplayName())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.SignUpResponse{
		UserId:           res.UserID.String(),
		SessionToken:     res.Token,
		ConsistencyToken: res.ConsistencyToken,
		User:             userProfile(res.Profile),
	}), nil
}

func (h *UserHandler) SignIn(ctx context.Context, req *connect.Request[swapmeetv1.SignInRequest]) (*connect.Response[swapmeetv1.SignInResponse], error) {
	s, err := h.app.Commands.SignIn(ctx, req.Msg.GetEmail(), req.Msg.GetPassword())
	if err != nil {
		return nil, err
	}
	u, err := h.app.Queries.SignedIn(ctx, s.UserID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.SignInResponse{UserId: s.UserID.String(), SessionToken: s.Token, User: userProfile(u)}), nil
}

func (h *UserHandler) SignOut(ctx context.Context, _ *connect.Request[swapmeetv1.SignOutRequest]) (*connect.Response[swapmeetv1.SignOutResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.app.Commands.SignOut(ctx, c.token); err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.SignOutResponse{}), nil
}

func (h *UserHandler) GetUser(ctx context.Context, req *connect.Request[swapmeetv1.GetUserRequest]) (*connect.Response[swapmeetv1.GetUserResponse], error) {
	u, err := h.app.Queries.GetUser(ctx, req.Msg.GetUserId(), req.Msg.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.GetUserResponse{User: userProfile(u)}), nil
}

func (h *UserHandler) UpdateProfile(ctx context.Context, req *connect.Request[swapmeetv1.UpdateProfileRequest]) (*connect.Response[swapmeetv1.UpdateProfileResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	token, err := h.app.Commands.UpdateProfile(ctx, c.userID, req.Msg.DisplayName, req.Msg.Bio)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.UpdateProfileResponse{ConsistencyToken: token}), nil
}

func userProfile(u app.UserView) *swapmeetv1.UserProfile {
	return &swapmeetv1.UserProfile{
		UserId:             u.ID,
		DisplayName:        u.DisplayName,
		Bio:                u.Bio,
		JoinedAt:           timestamppb.New(u.JoinedAt),
		RatingAverage:      u.RatingAverage,
		RatingCount:        u.RatingCount,
		ActiveListingCount: u.ActiveListingCount,
		SoldCount:          u.SoldCount,
	}
}
