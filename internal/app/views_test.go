package app

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/internal/readstore"
)

// Without a media store a view is the document's fields, without URLs.
func TestViewsOfDocuments(t *testing.T) {
	q := &Queries{}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	seller := readstore.UserSummary{ID: "s", DisplayName: "Sam", RatingAverage: 4.5, RatingCount: 2}
	img := readstore.Media{ID: "m", ContentType: "image/png", SizeBytes: 10, Width: 4, Height: 3, ObjectKey: "k", ThumbnailKey: "k.thumb.jpg"}
	l, err := q.listingView(context.Background(), readstore.Listing{
		ID: "l", Seller: seller, Title: "Lamp", Description: "Bright", Category: "lamps", Condition: "GOOD",
		Price: readstore.Money{Currency: "EUR", Minor: 1200}, Attributes: map[string]string{"w": "60"},
		Status: "AVAILABLE", Version: 3, Media: []readstore.Media{img},
		CreatedAt: at, UpdatedAt: at.Add(time.Hour), LSN: 99,
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := UserSummary{ID: "s", DisplayName: "Sam", RatingAverage: 4.5, RatingCount: 2}
	media := MediaView{ID: "m", ContentType: "image/png", SizeBytes: 10, Width: 4, Height: 3}
	want := ListingView{
		ID: "l", Seller: sum, Title: "Lamp", Description: "Bright", Category: "lamps", Condition: "GOOD",
		Price: Money{Currency: "EUR", Minor: 1200}, Attributes: map[string]string{"w": "60"},
		Status: "AVAILABLE", Version: 3, Media: []MediaView{media}, CreatedAt: at, UpdatedAt: at.Add(time.Hour), Position: 99,
	}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("listing view\n got %+v\nwant %+v", l, want)
	}

	o, err := q.orderView(context.Background(), readstore.Order{
		ID: "o", Buyer: readstore.UserSummary{ID: "b"}, Seller: seller, Status: "PAID",
		Total: readstore.Money{Currency: "EUR", Minor: 1200},
		Items: []readstore.OrderItem{
			{ListingID: "l", Title: "Lamp", Price: readstore.Money{Currency: "EUR", Minor: 1200}, SellerDisplayName: "Sam", Thumbnail: &img},
			{ListingID: "l2", Title: "Plain"},
		},
		History:   []readstore.StatusChange{{Status: "PENDING", At: at}, {Status: "PAID", At: at.Add(time.Minute)}},
		CreatedAt: at, UpdatedAt: at.Add(time.Minute), LSN: 77,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := OrderView{
		ID: "o", Buyer: UserSummary{ID: "b"}, Seller: sum, Status: "PAID", Total: Money{Currency: "EUR", Minor: 1200},
		Items: []OrderItemView{
			{ListingID: "l", Title: "Lamp", Price: Money{Currency: "EUR", Minor: 1200}, SellerDisplayName: "Sam", Thumbnail: &media},
			{ListingID: "l2", Title: "Plain"},
		},
		History:   []StatusChange{{Status: "PENDING", At: at}, {Status: "PAID", At: at.Add(time.Minute)}},
		CreatedAt: at, UpdatedAt: at.Add(time.Minute), Position: 77,
	}
	if !reflect.DeepEqual(o, wantOrder) {
		t.Fatalf("order view\n got %+v\nwant %+v", o, wantOrder)
	}
}
