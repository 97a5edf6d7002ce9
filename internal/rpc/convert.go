package rpc

import (
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
)

// Enum values cross the edge by name: CONDITION_LIKE_NEW is "LIKE_NEW" in
// the app, in Postgres and in the read documents.

func conditionName(c swapmeetv1.Condition) string {
	if c == swapmeetv1.Condition_CONDITION_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(c.String(), "CONDITION_")
}

func conditionEnum(s string) swapmeetv1.Condition {
	return swapmeetv1.Condition(swapmeetv1.Condition_value["CONDITION_"+s])
}

func listingStatusEnum(s string) swapmeetv1.ListingStatus {
	return swapmeetv1.ListingStatus(swapmeetv1.ListingStatus_value["LISTING_STATUS_"+s])
}

func orderStatusEnum(s string) swapmeetv1.OrderStatus {
	return swapmeetv1.OrderStatus(swapmeetv1.OrderStatus_value["ORDER_STATUS_"+s])
}

func moneyIn(m *swapmeetv1.Money) *app.Money {
	if m == nil {
		return nil
	}
	return &app.Money{Currency: m.GetCurrencyCode(), Minor: m.GetAmountMinor()}
}

func moneyOut(m app.Money) *swapmeetv1.Money {
	return &swapmeetv1.Money{CurrencyCode: m.Currency, AmountMinor: m.Minor}
}

func summaryProto(s app.UserSummary) *swapmeetv1.UserSummary {
	return &swapmeetv1.UserSummary{UserId: s.ID, DisplayName: s.DisplayName, RatingAverage: s.RatingAverage, RatingCount: s.RatingCount}
}

func mediaProto(m app.MediaView) *swapmeetv1.Media {
	out := &swapmeetv1.Media{
		MediaId: m.ID, ContentType: m.ContentType, SizeBytes: m.SizeBytes, Width: m.Width, Height: m.Height,
		Url: m.URL, ThumbnailUrl: m.ThumbnailURL,
	}
	if !m.URLExpires.IsZero() {
		out.UrlExpiresAt = timestamppb.New(m.URLExpires)
	}
	return out
}
