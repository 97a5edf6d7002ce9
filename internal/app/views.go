package app

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/swapmeet/swapmeet/internal/readstore"
)

// The views are what the queries return: plain values made from the read
// documents, which stay inside the app. Enum values (a condition, a
// status) are their names: "LIKE_NEW", "PAID".

// Money is an amount in minor units of an ISO 4217 currency.
type Money struct {
	Currency string
	Minor    int64
}

// UserSummary is a user as other views show them.
type UserSummary struct {
	ID            string
	DisplayName   string
	RatingAverage float64
	RatingCount   int32
}

// UserView is a public profile with its seller statistics.
type UserView struct {
	ID                 string
	DisplayName        string
	Bio                string
	JoinedAt           time.Time
	RatingAverage      float64
	RatingCount        int32
	ActiveListingCount int32
	SoldCount          int32
}

// MediaView is a confirmed image with its presigned URLs, made at read
// time: they expire.
type MediaView struct {
	ID           string
	ContentType  string
	SizeBytes    int64
	Width        int32
	Height       int32
	URL          string
	ThumbnailURL string    // the image itself when there is no thumbnail
	URLExpires   time.Time // zero when there is no media store
}

// ListingView is a listing with its images.
type ListingView struct {
	ID          string
	Seller      UserSummary
	Title       string
	Description string
	Category    string
	Condition   string
	Price       Money
	Attributes  map[string]string
	Status      string
	Version     int64
	Media       []MediaView
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Position is the commit position of the last change this state
	// reflects: a later state of the same listing has a higher one.
	Position uint64
}

// OrderView is an order as its buyer and seller see it.
type OrderView struct {
	ID        string
	Buyer     UserSummary
	Seller    UserSummary
	Status    string
	Total     Money
	Items     []OrderItemView
	History   []StatusChange
	CreatedAt time.Time
	UpdatedAt time.Time
	// Position is the commit position of the last change this state
	// reflects: a later state of the same order has a higher one.
	Position uint64
}

// OrderItemView is what was bought, as it was at purchase.
type OrderItemView struct {
	ListingID         string
	Title             string
	Price             Money
	SellerDisplayName string
	Thumbnail         *MediaView // nil for an item without an image
}

// StatusChange is one step of an order's history.
type StatusChange struct {
	Status string
	At     time.Time
}

// ReviewView is one review of a seller.
type ReviewView struct {
	ID        string
	OrderID   string
	SellerID  string
	Author    UserSummary
	Rating    int32
	Comment   string
	CreatedAt time.Time
}

func moneyView(m readstore.Money) Money { return Money{Currency: m.Currency, Minor: m.Minor} }

func summaryView(s readstore.UserSummary) UserSummary {
	return UserSummary{ID: s.ID, DisplayName: s.DisplayName, RatingAverage: s.RatingAverage, RatingCount: s.RatingCount}
}

func userView(u readstore.User) UserView {
	return UserView{
		ID: u.ID, DisplayName: u.DisplayName, Bio: u.Bio, JoinedAt: u.JoinedAt,
		RatingAverage: u.RatingAverage, RatingCount: u.RatingCount,
		ActiveListingCount: u.ActiveListingCount, SoldCount: u.SoldCount,
	}
}

func reviewView(r readstore.Review) ReviewView {
	return ReviewView{
		ID: r.ID, OrderID: r.OrderID, SellerID: r.SellerID, Author: summaryView(r.Author),
		Rating: r.Rating, Comment: r.Comment, CreatedAt: r.CreatedAt,
	}
}

// mediaView presigns the URLs of one image. The two URLs may have been
// signed at different times (the store reuses a recent signature), so
// URLExpires is the earlier of their expiries.
func (q *Queries) mediaView(ctx context.Context, m readstore.Media) (MediaView, error) {
	out := MediaView{ID: m.ID, ContentType: m.ContentType, SizeBytes: m.SizeBytes, Width: m.Width, Height: m.Height}
	if q.deps.Media == nil {
		return out, nil
	}
	u, exp, err := q.deps.Media.PresignedGet(ctx, m.ObjectKey)
	if err != nil {
		return MediaView{}, err
	}
	out.URL, out.ThumbnailURL, out.URLExpires = u, u, exp
	if m.ThumbnailKey != "" {
		var texp time.Time
		if out.ThumbnailURL, texp, err = q.deps.Media.PresignedGet(ctx, m.ThumbnailKey); err != nil {
			return MediaView{}, err
		}
		if texp.Before(out.URLExpires) {
			out.URLExpires = texp
		}
	}
	return out, nil
}

func (q *Queries) listingView(ctx context.Context, l readstore.Listing) (ListingView, error) {
	v := ListingView{
		ID: l.ID, Seller: summaryView(l.Seller), Title: l.Title, Description: l.Description,
		Category: l.Category, Condition: l.Condition, Price: moneyView(l.Price), Attributes: maps.Clone(l.Attributes),
		Status: l.Status, Version: l.Version, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, Position: uint64(l.LSN),
	}
	for _, m := range l.Media {
		mv, err := q.mediaView(ctx, m)
		if err != nil {
			return ListingView{}, fmt.Errorf("listing %s: %w", l.ID, err)
		}
		v.Media = append(v.Media, mv)
	}
	return v, nil
}

func (q *Queries) orderView(ctx context.Context, o readstore.Order) (OrderView, error) {
	v := OrderView{
		ID: o.ID, Buyer: summaryView(o.Buyer), Seller: summaryView(o.Seller), Status: o.Status,
		Total: moneyView(o.Total), CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, Position: uint64(o.LSN),
	}
	for _, it := range o.Items {
		item := OrderItemView{ListingID: it.ListingID, Title: it.Title, Price: moneyView(it.Price), SellerDisplayName: it.SellerDisplayName}
		if it.Thumbnail != nil {
			mv, err := q.mediaView(ctx, *it.Thumbnail)
			if err != nil {
				return OrderView{}, fmt.Errorf("order %s: %w", o.ID, err)
			}
			item.Thumbnail = &mv
		}
		v.Items = append(v.Items, item)
	}
	for _, h := range o.History {
		v.History = append(v.History, StatusChange{Status: h.Status, At: h.At})
	}
	return v, nil
}
