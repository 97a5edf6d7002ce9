package app

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
)

// The object types with a history.
const (
	ObjectListing = search.ObjectListing
	ObjectOrder   = search.ObjectOrder
	ObjectUser    = search.ObjectUser
	ObjectReview  = search.ObjectReview
)

// HistoryEntryView is one change of an object as its reader may see it.
type HistoryEntryView struct {
	CommitTime time.Time
	Operation  string
	ActorID    string
	RPC        string
	RequestID  string
	Changes    []search.FieldChange
	Lost       bool
}

// ListHistory pages through an object's history, newest first. caller is
// uuid.Nil for an anonymous request. Who may read what:
//   - a listing, a review: anyone. On a listing, the actor of a change
//     made by someone other than its seller (a buyer's purchase marks it
//     SOLD) is shown only to that actor: who bought what is not public;
//   - an order: its buyer and seller (NotFound for anyone else, as
//     GetOrder);
//   - a user: that user alone (PermissionDenied for another).
func (q *Queries) ListHistory(ctx context.Context, caller uuid.UUID, objectType, objectID string, pageSize int32, pageToken, token string) ([]HistoryEntryView, string, error) {
	var v violations
	id := v.id("object_id", objectID)
	switch objectType {
	case ObjectListing, ObjectOrder, ObjectUser, ObjectReview:
	default:
		v.add("object_type", "must be one of OBJECT_TYPE_LISTING, OBJECT_TYPE_ORDER, OBJECT_TYPE_USER, OBJECT_TYPE_REVIEW")
	}
	limit := v.pageSize(pageSize)
	if len(pageToken) > 512 {
		v.add("page_token", "is not a token this service issued")
	}
	if err := v.err(); err != nil {
		return nil, "", err
	}
	if (objectType == ObjectOrder || objectType == ObjectUser) && caller == uuid.Nil {
		return nil, "", errorf(CodeUnauthenticated, "sign in to read the history of %s", map[string]string{ObjectOrder: "an order", ObjectUser: "a profile"}[objectType])
	}
	ctx, err := q.awaitToken(ctx, token)
	if err != nil {
		return nil, "", err
	}
	// shown says whether the reader may see who made a change.
	shown := func(string) bool { return true }
	switch objectType {
	case ObjectListing:
		l, err := getDoc[readstore.Listing](ctx, q, readstore.Listings, id.String(), "listing")
		if err != nil {
			return nil, "", err
		}
		shown = func(actor string) bool {
			return actor == l.Seller.ID || actor == audit.System || (caller != uuid.Nil && actor == caller.String())
		}
	case ObjectReview:
		if _, err := getDoc[readstore.Review](ctx, q, readstore.Reviews, id.String(), "review"); err != nil {
			return nil, "", err
		}
	case ObjectOrder:
		o, err := getDoc[readstore.Order](ctx, q, readstore.Orders, id.String(), "order")
		if err != nil {
			return nil, "", err
		}
		if o.Buyer.ID != caller.String() && o.Seller.ID != caller.String() {
			return nil, "", errorf(CodeNotFound, "order not found")
		}
	case ObjectUser:
		if id != caller {
			return nil, "", errorf(CodePermissionDenied, "only a user may read their own profile's history")
		}
	}
	entries, next, err := q.deps.Search.History(ctx, objectType, id, limit, pageToken)
	if errors.Is(err, search.ErrBadHistoryToken) {
		v.add("page_token", "was not issued for this object's history; start again without it")
		return nil, "", v.err()
	}
	if err != nil {
		return nil, "", readErr("history", err)
	}
	out := make([]HistoryEntryView, 0, len(entries))
	for _, e := range entries {
		ev := HistoryEntryView{CommitTime: e.CommitTime, Operation: e.Operation, Changes: e.Changes, Lost: e.LostTo != ""}
		if e.Annotated {
			ev.RPC = e.RPC
			if shown(e.Actor) {
				ev.ActorID, ev.RequestID = e.Actor, e.RequestID
			}
		}
		out = append(out, ev)
	}
	return out, next, nil
}
