package rpc

import (
	"context"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// HistoryHandler serves swapmeet.v1.HistoryService.
type HistoryHandler struct {
	swapmeetv1connect.UnimplementedHistoryServiceHandler
	app *app.App
}

var objectTypes = map[swapmeetv1.ObjectType]string{
	swapmeetv1.ObjectType_OBJECT_TYPE_LISTING: app.ObjectListing,
	swapmeetv1.ObjectType_OBJECT_TYPE_ORDER:   app.ObjectOrder,
	swapmeetv1.ObjectType_OBJECT_TYPE_USER:    app.ObjectUser,
	swapmeetv1.ObjectType_OBJECT_TYPE_REVIEW:  app.ObjectReview,
}

func (h *HistoryHandler) ListHistory(ctx context.Context, req *connect.Request[swapmeetv1.ListHistoryRequest]) (*connect.Response[swapmeetv1.ListHistoryResponse], error) {
	m := req.Msg
	caller := uuid.Nil
	if c, ok := callerFrom(ctx); ok {
		caller = c.userID
	}
	entries, next, err := h.app.Queries.ListHistory(ctx, caller, objectTypes[m.GetObjectType()], m.GetObjectId(), m.GetPageSize(), m.GetPageToken(), m.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	out := &swapmeetv1.ListHistoryResponse{NextPageToken: next, Entries: make([]*swapmeetv1.HistoryEntry, 0, len(entries))}
	for _, e := range entries {
		pe := &swapmeetv1.HistoryEntry{
			CommitTime: timestamppb.New(e.CommitTime), ActorId: e.ActorID, Rpc: e.RPC, RequestId: e.RequestID,
			Operation: e.Operation, Lost: e.Lost,
		}
		for _, c := range e.Changes {
			pe.Changes = append(pe.Changes, &swapmeetv1.FieldChange{Field: c.Field, Before: c.Before, After: c.After})
		}
		out.Entries = append(out.Entries, pe)
	}
	return connect.NewResponse(out), nil
}
