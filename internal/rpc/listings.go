package rpc

import (
	"context"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/live"
)

// ListingHandler serves swapmeet.v1.ListingService.
type ListingHandler struct {
	swapmeetv1connect.UnimplementedListingServiceHandler
	app  *app.App
	live *live.Hub
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
	}, m.GetIdempotencyKey())
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

func (h *ListingHandler) GetListing(ctx context.Context, req *connect.Request[swapmeetv1.GetListingRequest]) (*connect.Response[swapmeetv1.GetListingResponse], error) {
	l, err := h.app.Queries.GetListing(ctx, req.Msg.GetListingId(), req.Msg.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.GetListingResponse{Listing: listingProto(l)}), nil
}

func (h *ListingHandler) SearchListings(ctx context.Context, req *connect.Request[swapmeetv1.SearchListingsRequest]) (*connect.Response[swapmeetv1.SearchListingsResponse], error) {
	m := req.Msg
	status := listingStatusName(m.GetStatus())
	order := app.SearchSort(-1) // an unknown order: refused
	switch m.GetSort() {
	case swapmeetv1.SearchSort_SEARCH_SORT_UNSPECIFIED:
		order = app.SortDefault
	case swapmeetv1.SearchSort_SEARCH_SORT_NEWEST:
		order = app.SortNewest
	case swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC:
		order = app.SortPriceAsc
	case swapmeetv1.SearchSort_SEARCH_SORT_PRICE_DESC:
		order = app.SortPriceDesc
	case swapmeetv1.SearchSort_SEARCH_SORT_RELEVANCE:
		order = app.SortRelevance
	}
	views, next, err := h.app.Queries.SearchListings(ctx, app.ListingSearch{
		Query: m.GetQuery(), Category: m.GetCategory(), Condition: conditionName(m.GetCondition()),
		MinPrice: moneyIn(m.GetMinPrice()), MaxPrice: moneyIn(m.GetMaxPrice()), SellerID: m.GetSellerId(),
		Attributes: m.GetAttributes(), Status: status, Sort: order,
		PageSize: m.GetPageSize(), PageToken: m.GetPageToken(),
	}, m.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	out := &swapmeetv1.SearchListingsResponse{NextPageToken: next}
	for _, v := range views {
		out.Listings = append(out.Listings, listingProto(v))
	}
	return connect.NewResponse(out), nil
}

func (h *ListingHandler) ListMyListings(ctx context.Context, req *connect.Request[swapmeetv1.ListMyListingsRequest]) (*connect.Response[swapmeetv1.ListMyListingsResponse], error) {
	c, err := requireCaller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	views, next, err := h.app.Queries.ListMyListings(ctx, c.userID, listingStatusName(m.GetStatus()), m.GetPageSize(), m.GetPageToken(), m.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	out := &swapmeetv1.ListMyListingsResponse{NextPageToken: next}
	for _, v := range views {
		out.Listings = append(out.Listings, listingProto(v))
	}
	return connect.NewResponse(out), nil
}

func (h *ListingHandler) ListCategories(ctx context.Context, req *connect.Request[swapmeetv1.ListCategoriesRequest]) (*connect.Response[swapmeetv1.ListCategoriesResponse], error) {
	cs, err := h.app.Queries.ListCategories(ctx, req.Msg.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	out := &swapmeetv1.ListCategoriesResponse{Categories: make([]*swapmeetv1.CategoryCount, len(cs))}
	for i, c := range cs {
		out.Categories[i] = &swapmeetv1.CategoryCount{Name: c.Name, AvailableCount: c.AvailableCount}
	}
	return connect.NewResponse(out), nil
}

func listingProto(l app.ListingView) *swapmeetv1.Listing {
	out := &swapmeetv1.Listing{
		ListingId: l.ID, Seller: summaryProto(l.Seller), Title: l.Title, Description: l.Description,
		Category: l.Category, Condition: conditionEnum(l.Condition), Price: moneyOut(l.Price),
		Attributes: l.Attributes, Status: listingStatusEnum(l.Status), Version: l.Version,
		CreatedAt: timestamppb.New(l.CreatedAt), UpdatedAt: timestamppb.New(l.UpdatedAt),
	}
	for _, m := range l.Media {
		out.Media = append(out.Media, mediaProto(m))
	}
	return out
}

// listingStatusName is a status filter's name: "" when unset; an unknown
// number keeps its digits, which validation refuses.
func listingStatusName(s swapmeetv1.ListingStatus) string {
	if s == swapmeetv1.ListingStatus_LISTING_STATUS_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(s.String(), "LISTING_STATUS_")
}
