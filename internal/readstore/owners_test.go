package readstore_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// go test ./internal/readstore -run OwnerLists -owners.rows=100000 -owners.runs=20 -v
// loads that many orders and reviews, a tenth of them one owner's, and
// times a first and a later page of that owner's list.
var (
	ownerRows = flag.Int("owners.rows", 2_000, "orders and reviews TestOwnerLists loads")
	ownerRuns = flag.Int("owners.runs", 3, "timed runs per list and page")
)

func TestOwnerLists(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a collection")
	}
	e := itest.New(t)
	ctx := context.Background()
	if err := e.Reads.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	owner := uuid.NewString()
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mine []readstore.Cursor // the owner's, oldest first
	for from := 0; from < *ownerRows; from += 1000 {
		var orders, reviews []any
		for i := from; i < min(from+1000, *ownerRows); i++ {
			who := uuid.NewString()
			if i%10 == 0 {
				who = owner
			}
			at := epoch.Add(time.Duration(i) * time.Second)
			id := uuid.Must(uuid.NewV7()).String()
			if who == owner {
				mine = append(mine, readstore.Cursor{CreatedAt: at, ID: id})
			}
			orders = append(orders, readstore.Order{ID: id, Buyer: readstore.UserSummary{ID: who, DisplayName: "buyer"},
				Seller: readstore.UserSummary{ID: uuid.NewString(), DisplayName: "seller"}, Status: "DELIVERED",
				Total: readstore.Money{Currency: "EUR", Minor: 1000}, Items: []readstore.OrderItem{{ListingID: uuid.NewString(), Title: "an item"}},
				History: []readstore.StatusChange{{Status: "PENDING", At: at}}, CreatedAt: at, UpdatedAt: at, LSN: 1})
			reviews = append(reviews, readstore.Review{ID: id, OrderID: uuid.NewString(), SellerID: who,
				Author: readstore.UserSummary{ID: uuid.NewString(), DisplayName: "author"}, Rating: 5, Comment: "fine", CreatedAt: at, LSN: 1})
		}
		if err := e.Reads.InsertMany(ctx, readstore.Orders, orders); err != nil {
			t.Fatal(err)
		}
		if err := e.Reads.InsertMany(ctx, readstore.Reviews, reviews); err != nil {
			t.Fatal(err)
		}
	}
	later := &mine[len(mine)/2]
	lists := []struct {
		name string
		read func(cur *readstore.Cursor) (int, error)
	}{
		{"a buyer's orders", func(cur *readstore.Cursor) (int, error) {
			docs, _, err := e.Reads.ListOrders(ctx, readstore.OrderFilter{UserID: owner, Role: "buyer"}, cur, 20)
			return len(docs), err
		}},
		{"a seller's reviews", func(cur *readstore.Cursor) (int, error) {
			docs, _, err := e.Reads.ListSellerReviews(ctx, owner, cur, 20)
			return len(docs), err
		}},
	}
	for _, l := range lists {
		for _, p := range []struct {
			name string
			cur  *readstore.Cursor
		}{{"first page", nil}, {"later page", later}} {
			var ds []time.Duration
			for range *ownerRuns {
				t0 := time.Now()
				n, err := l.read(p.cur)
				if err != nil {
					// What a client sees: the store gives up at its
					// operation timeout.
					t.Logf("%s, %s: fails after %s: %v", l.name, p.name, time.Since(t0).Round(time.Millisecond), err)
					ds = nil
					break
				}
				if n != 20 {
					t.Fatalf("%s, %s: %d documents, want 20", l.name, p.name, n)
				}
				ds = append(ds, time.Since(t0))
			}
			if ds == nil {
				continue
			}
			slices.Sort(ds)
			t.Logf("%s (%d of %d), %s of 20: p50 %s, p99 %s", l.name, len(mine), *ownerRows, p.name,
				fmt.Sprintf("%.1f ms", float64(ds[len(ds)/2].Microseconds())/1000),
				fmt.Sprintf("%.1f ms", float64(ds[len(ds)*99/100].Microseconds())/1000))
		}
	}
}
