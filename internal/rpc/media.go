package rpc

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
)

func (h *ListingHandler) CreateMediaUpload(ctx context.Context, req *connect.Request[swapmeetv1.CreateMediaUploadRequest]) (*connect.Response[swapmeetv1.CreateMediaUploadResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	up, err := h.app.Commands.CreateMediaUpload(ctx, c.userID, m.GetListingId(), m.GetContentType(), m.GetSizeBytes(), m.GetIdempotencyKey())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.CreateMediaUploadResponse{
		MediaId: up.ID.String(), UploadUrl: up.URL, FormFields: up.Fields, ExpiresAt: timestamppb.New(up.ExpiresAt),
	}), nil
}

func (h *ListingHandler) ConfirmMediaUpload(ctx context.Context, req *connect.Request[swapmeetv1.ConfirmMediaUploadRequest]) (*connect.Response[swapmeetv1.ConfirmMediaUploadResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	token, err := h.app.Commands.ConfirmMediaUpload(ctx, c.userID, req.Msg.GetListingId(), req.Msg.GetMediaId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.ConfirmMediaUploadResponse{ConsistencyToken: token}), nil
}

func (h *ListingHandler) DeleteMedia(ctx context.Context, req *connect.Request[swapmeetv1.DeleteMediaRequest]) (*connect.Response[swapmeetv1.DeleteMediaResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	token, err := h.app.Commands.DeleteMedia(ctx, c.userID, req.Msg.GetListingId(), req.Msg.GetMediaId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.DeleteMediaResponse{ConsistencyToken: token}), nil
}

func (h *ListingHandler) ReorderMedia(ctx context.Context, req *connect.Request[swapmeetv1.ReorderMediaRequest]) (*connect.Response[swapmeetv1.ReorderMediaResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	token, err := h.app.Commands.ReorderMedia(ctx, c.userID, req.Msg.GetListingId(), req.Msg.GetMediaIds())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.ReorderMediaResponse{ConsistencyToken: token}), nil
}
