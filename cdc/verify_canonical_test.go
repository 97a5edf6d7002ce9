package cdc

import (
	"bytes"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/internal/readstore"
)

// TestCanonicalForm: a listing's attributes are a Go map, which BSON
// writes in random order; the canonical form does not depend on it, keeps
// every value's type, and still tells a changed field apart.
func TestCanonicalForm(t *testing.T) {
	attrs := map[string]string{"color": "red", "size": "M", "brand": "Acme", "year": "1999", "material": "oak", "era": "modern"}
	l := readstore.Listing{
		ID: "l1", Seller: readstore.UserSummary{ID: "u1", DisplayName: "Ann", RatingAverage: 4.5, RatingCount: 2},
		Title: "Chair", Price: readstore.Money{Currency: "EUR", Minor: 1200}, Attributes: attrs,
		Media:     []readstore.Media{{ID: "m1", Width: 3}},
		CreatedAt: time.UnixMilli(1700000000123).UTC(), LSN: 7,
	}
	first, err := canonical(l)
	if err != nil {
		t.Fatal(err)
	}
	orders := map[string]bool{}
	for range 200 {
		raw, _ := bson.Marshal(l)
		orders[string(bson.Raw(raw).Lookup("attributes").Value)] = true
		again, err := canonical(l)
		if err != nil || !bytes.Equal(first, again) {
			t.Fatalf("canonical form changed between runs: %v", err)
		}
	}
	if len(orders) < 2 {
		t.Logf("the map happened to marshal in one order only")
	}
	// The stored document, decoded into the same type, gives the same form.
	stored, _ := bson.Marshal(l)
	if got := differingFields(l, stored); len(got) != 0 {
		t.Fatalf("differing fields of an equal document: %v", got)
	}
	var back readstore.Listing
	if err := bson.Unmarshal(first, &back); err != nil {
		t.Fatal(err)
	}
	back.LSN = l.LSN
	if back.Seller != l.Seller || back.Price != l.Price || !back.CreatedAt.Equal(l.CreatedAt) || back.Attributes["era"] != "modern" || back.Media[0].Width != 3 {
		t.Fatalf("canonical form lost a value: %+v", back)
	}
	changed := l
	changed.Title = "Table"
	changed.LSN = 8
	if docDigest(changed) == docDigest(l) {
		t.Fatal("a changed title has the same digest")
	}
	stored, _ = bson.Marshal(changed)
	if got := differingFields(l, stored); len(got) != 1 || got[0] != "title" {
		t.Fatalf("differing fields = %v, want [title]", got)
	}
}
