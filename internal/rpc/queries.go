package rpc

import (
	"context"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// The query RPCs are NO_SIDE_EFFECTS in the proto, so Connect serves them
// over HTTP GET as well as POST: browsers and proxies may cache them.

func (h *ListingHandler) GetListing(ctx context.Context, req *connect.Request[swapmeetv1.GetListingRequest]) (*connect.Response[swapmeetv1.GetListingResponse], error) {
	l, err := h.app.Queries.GetListing(ctx, req.Msg.GetListingId(), req.Msg.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&swapmeetv1.GetListingResponse{Listing: listingProto(l)}), nil
}

func (h *ListingHandler) SearchListings(ctx context.Context, req *connect.Request[swapmeetv1.SearchListingsRequest]) (*connect.Response[swapmeetv1.SearchListingsResponse], error) {
	m := req.Msg
	status := ""
	if m.GetStatus() != swapmeetv1.ListingStatus_LISTING_STATUS_UNSPECIFIED {
		status = strings.TrimPrefix(m.GetStatus().String(), "LISTING_STATUS_")
	}
	order := readstore.SortNewest
	switch m.GetSort() {
	case swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC:
		order = readstore.SortPriceAsc
	case swapmeetv1.SearchSort_SEARCH_SORT_PRICE_DESC:
		order = readstore.SortPriceDesc
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

func (h *ReviewHandler) ListSellerReviews(ctx context.Context, req *connect.Request[swapmeetv1.ListSellerReviewsRequest]) (*connect.Response[swapmeetv1.ListSellerReviewsResponse], error) {
	m := req.Msg
	r, err := h.app.Queries.ListSellerReviews(ctx, m.GetSellerId(), m.GetPageSize(), m.GetPageToken(), m.GetConsistencyToken())
	if err != nil {
		return nil, err
	}
	out := &swapmeetv1.ListSellerReviewsResponse{RatingAverage: r.RatingAverage, RatingCount: r.RatingCount, NextPageToken: r.Next}
	for _, d := range r.Reviews {
		out.Reviews = append(out.Reviews, &swapmeetv1.Review{
			ReviewId: d.ID, OrderId: d.OrderID, SellerId: d.SellerID, Author: summaryProto(d.Author),
			Rating: d.Rating, Comment: d.Comment, CreatedAt: timestamppb.New(d.CreatedAt),
		})
	}
	return connect.NewResponse(out), nil
}

func summaryProto(s readstore.UserSummary) *swapmeetv1.UserSummary {
	return &swapmeetv1.UserSummary{UserId: s.ID, DisplayName: s.DisplayName, RatingAverage: s.RatingAverage, RatingCount: s.RatingCount}
}

func moneyDoc(m readstore.Money) *swapmeetv1.Money {
	return &swapmeetv1.Money{CurrencyCode: m.Currency, AmountMinor: m.Minor}
}

func mediaProto(m readstore.Media, u app.MediaURLs) *swapmeetv1.Media {
	out := &swapmeetv1.Media{
		MediaId: m.ID, ContentType: m.ContentType, SizeBytes: m.SizeBytes, Width: m.Width, Height: m.Height,
		Url: u.URL, ThumbnailUrl: u.ThumbnailURL,
	}
	if !u.Expires.IsZero() {
		out.UrlExpiresAt = timestamppb.New(u.Expires)
	}
	return out
}

func listingProto(v app.ListingView) *swapmeetv1.Listing {
	l := v.Listing
	out := &swapmeetv1.Listing{
		ListingId: l.ID, Seller: summaryProto(l.Seller), Title: l.Title, Description: l.Description,
		Category: l.Category, Condition: conditionEnum(l.Condition), Price: moneyDoc(l.Price),
		Attributes: l.Attributes, Status: listingStatusEnum(l.Status), Version: l.Version,
		CreatedAt: timestamppb.New(l.CreatedAt), UpdatedAt: timestamppb.New(l.UpdatedAt),
	}
	for i, m := range l.Media {
		out.Media = append(out.Media, mediaProto(m, v.URLs[i]))
	}
	return out
}

func orderProto(v app.OrderView) *swapmeetv1.Order {
	o := v.Order
	out := &swapmeetv1.Order{
		OrderId: o.ID, Buyer: summaryProto(o.Buyer), Seller: summaryProto(o.Seller),
		Status: orderStatusEnum(o.Status), Total: moneyDoc(o.Total),
		CreatedAt: timestamppb.New(o.CreatedAt), UpdatedAt: timestamppb.New(o.UpdatedAt),
	}
	for i, it := range o.Items {
		item := &swapmeetv1.OrderItem{ListingId: it.ListingID, Title: it.Title, Price: moneyDoc(it.Price), SellerDisplayName: it.SellerDisplayName}
		if it.Thumbnail != nil {
			item.Thumbnail = mediaProto(*it.Thumbnail, v.URLs[i])
		}
		out.Items = append(out.Items, item)
	}
	for _, h := range o.History {
		out.History = append(out.History, &swapmeetv1.OrderStatusChange{Status: orderStatusEnum(h.Status), At: timestamppb.New(h.At)})
	}
	return out
}
