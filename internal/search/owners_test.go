package search

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/internal/readstore"
)

func order(n int, buyer, seller, status string, lsn int64) readstore.Order {
	at := epoch.Add(time.Duration(n) * time.Minute)
	return readstore.Order{
		ID:     uuid.Must(uuid.NewV7()).String(),
		Buyer:  readstore.UserSummary{ID: buyer, DisplayName: "Bea", RatingAverage: 4.25, RatingCount: 4},
		Seller: readstore.UserSummary{ID: seller, DisplayName: "Sam"},
		Status: status, Total: readstore.Money{Currency: "EUR", Minor: 1250},
		Items: []readstore.OrderItem{{ListingID: uuid.NewString(), Title: "Oak chair", Price: readstore.Money{Currency: "EUR", Minor: 1250},
			SellerDisplayName: "Sam", Thumbnail: &readstore.Media{ID: "m1", ContentType: "image/jpeg", ObjectKey: "k", ThumbnailKey: "t"}}},
		History:   []readstore.StatusChange{{Status: "PENDING", At: at}},
		CreatedAt: at, UpdatedAt: at, LSN: lsn,
	}
}

func orderIDs(t *testing.T, s *Store, f OrderFilter, limit int) []string {
	t.Helper()
	var ids []string
	var cur *readstore.Cursor
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("paging does not end")
		}
		docs, more, err := s.ListOrders(context.Background(), f, cur, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			ids = append(ids, d.ID)
		}
		if !more {
			return ids
		}
		last := docs[len(docs)-1]
		cur = &readstore.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
}

// TestOwnerListsPageNewestFirst: each owner list pages through exactly
// its owner's rows, newest first with ties broken by id, whatever the
// page size, and a row keeps every field of its document.
func TestOwnerListsPageNewestFirst(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	buyer, seller, other := uuid.NewString(), uuid.NewString(), uuid.NewString()
	var orders []readstore.Order
	var reviews []readstore.Review
	for i := range 7 {
		status := "PAID"
		if i%2 == 0 {
			status = "DELIVERED"
		}
		o := order(i/2, buyer, seller, status, int64(100+i)) // pairs share a created_at
		orders = append(orders, o, order(i, other, buyer, "PAID", int64(100+i)))
		reviews = append(reviews, readstore.Review{ID: uuid.Must(uuid.NewV7()).String(), OrderID: o.ID, SellerID: seller,
			Author: o.Buyer, Rating: int32(1 + i%5), Comment: fmt.Sprint("review ", i), CreatedAt: o.CreatedAt, LSN: o.LSN},
			readstore.Review{ID: uuid.Must(uuid.NewV7()).String(), SellerID: other, CreatedAt: o.CreatedAt, LSN: o.LSN})
	}
	apply(t, s, Batch{Position: 200, Orders: orders, Reviews: reviews})

	newest := func(f func(readstore.Order) bool) []string {
		var mine []readstore.Order
		for _, o := range orders {
			if f(o) {
				mine = append(mine, o)
			}
		}
		slices.SortFunc(mine, func(a, b readstore.Order) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		})
		var ids []string
		for _, o := range mine {
			ids = append(ids, o.ID)
		}
		return ids
	}
	for _, limit := range []int{1, 2, 3, 100} {
		for _, c := range []struct {
			f    OrderFilter
			want []string
		}{
			{OrderFilter{UserID: buyer, Role: RoleBuyer}, newest(func(o readstore.Order) bool { return o.Buyer.ID == buyer })},
			{OrderFilter{UserID: buyer, Role: RoleBuyer, Status: "PAID"}, newest(func(o readstore.Order) bool { return o.Buyer.ID == buyer && o.Status == "PAID" })},
			{OrderFilter{UserID: buyer, Role: RoleSeller}, newest(func(o readstore.Order) bool { return o.Seller.ID == buyer })},
			{OrderFilter{UserID: uuid.NewString(), Role: RoleSeller}, nil},
		} {
			if got := orderIDs(t, s, c.f, limit); !slices.Equal(got, c.want) {
				t.Errorf("%+v, pages of %d:\n got %v\nwant %v", c.f, limit, got, c.want)
			}
		}
	}
	docs, _, err := s.ListOrders(ctx, OrderFilter{UserID: buyer, Role: RoleBuyer}, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		i := slices.IndexFunc(orders, func(o readstore.Order) bool { return o.ID == d.ID })
		if !reflect.DeepEqual(d, orders[i]) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", d, orders[i])
		}
	}
	rs, more, err := s.ListSellerReviews(ctx, seller, nil, 3)
	if err != nil || !more || len(rs) != 3 {
		t.Fatalf("reviews: %d, more %v, %v", len(rs), more, err)
	}
	rest, more, err := s.ListSellerReviews(ctx, seller, &readstore.Cursor{CreatedAt: rs[2].CreatedAt, ID: rs[2].ID}, 100)
	if err != nil || more || len(rest) != 4 {
		t.Fatalf("reviews after the first page: %d, more %v, %v", len(rest), more, err)
	}
	for _, r := range append(rs, rest...) {
		if r.SellerID != seller || !strings.HasPrefix(r.Comment, "review ") {
			t.Fatalf("another seller's review, or a field lost: %+v", r)
		}
	}
	if _, _, err := s.ListOrders(ctx, OrderFilter{UserID: buyer, Role: "friend"}, nil, 10); err == nil {
		t.Fatal("an unknown role was accepted")
	}
}

// TestOwnerRowsAreFenced: an order or review row is replaced only by a
// newer write, a deletion wins a tie, and a deleted row leaves the lists.
func TestOwnerRowsAreFenced(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	buyer, seller := uuid.NewString(), uuid.NewString()
	o := order(1, buyer, seller, "PAID", 20)
	r := readstore.Review{ID: uuid.Must(uuid.NewV7()).String(), SellerID: seller, Comment: "at 20", CreatedAt: o.CreatedAt, LSN: 20}
	apply(t, s, Batch{Position: 20, Orders: []readstore.Order{o}, Reviews: []readstore.Review{r}})
	stale, staleR := o, r
	stale.Status, stale.LSN, staleR.Comment, staleR.LSN = "PENDING", 10, "at 10", 10
	apply(t, s, Batch{Position: 21, Orders: []readstore.Order{stale}, Reviews: []readstore.Review{staleR}})
	docs, _, err := s.ListOrders(ctx, OrderFilter{UserID: buyer, Role: RoleBuyer}, nil, 10)
	if err != nil || len(docs) != 1 || docs[0].Status != "PAID" {
		t.Fatalf("a stale write moved an order back: %+v, %v", docs, err)
	}
	rs, _, err := s.ListSellerReviews(ctx, seller, nil, 10)
	if err != nil || len(rs) != 1 || rs[0].Comment != "at 20" {
		t.Fatalf("a stale write moved a review back: %+v, %v", rs, err)
	}
	apply(t, s, Batch{Position: 22,
		DeletedOrders: []Deletion{{ID: o.ID, LSN: 20}}, DeletedReviews: []Deletion{{ID: r.ID, LSN: 20}}})
	apply(t, s, Batch{Position: 23, Orders: []readstore.Order{o}, Reviews: []readstore.Review{r}}) // a replay at the tie
	if docs, _, _ := s.ListOrders(ctx, OrderFilter{UserID: buyer, Role: RoleBuyer}, nil, 10); len(docs) != 0 {
		t.Fatalf("a deleted order is listed: %+v", docs)
	}
	if rs, _, _ := s.ListSellerReviews(ctx, seller, nil, 10); len(rs) != 0 {
		t.Fatalf("a deleted review is listed: %+v", rs)
	}
	if rows, err := s.OrderRows(ctx, live(t, s), "", 10); err != nil || len(rows) != 0 {
		t.Fatalf("OrderRows lists a tombstone: %+v, %v", rows, err)
	}
}

// go test ./internal/search -run OwnerPlans -owners.rows=100000 -search.runs=200 -v
// loads that many orders and reviews, a tenth of them one owner's, and
// prints each list's plan, the rows it read, and its time.
var ownerPlanRows = flag.Int("owners.rows", 10_000, "orders and reviews TestOwnerPlans loads")

// TestOwnerPlans: a page of an owner list reads a page through an index,
// however many rows the owner has, first page or later.
func TestOwnerPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a collection")
	}
	s := newStore(t, Options{})
	ctx := context.Background()
	g, err := s.CreateGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owner := uuid.NewString()
	var mine []readstore.Cursor // the owner's orders, oldest first
	statuses := []string{"PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"}
	start := time.Now()
	for from := 0; from < *ownerPlanRows; from += 10_000 {
		var orders []readstore.Order
		var reviews []readstore.Review
		for i := from; i < min(from+10_000, *ownerPlanRows); i++ {
			who := uuid.NewString()
			if i%10 == 0 {
				who = owner
			}
			o := order(i, who, uuid.NewString(), statuses[(i/10)%len(statuses)], 1)
			if who == owner {
				mine = append(mine, readstore.Cursor{CreatedAt: o.CreatedAt, ID: o.ID})
			}
			orders = append(orders, o)
			reviews = append(reviews, readstore.Review{ID: o.ID, OrderID: o.ID, SellerID: who, Author: o.Buyer,
				Rating: 5, Comment: "fine", CreatedAt: o.CreatedAt, LSN: 1})
		}
		if _, err := s.LoadOrders(ctx, g.ID, orders); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoadReviews(ctx, g.ID, reviews); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Seal(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Switch(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders and %d reviews loaded and sealed in %s", *ownerPlanRows, *ownerPlanRows, time.Since(start).Round(time.Millisecond))
	later := &mine[len(mine)/2]
	shapes := []struct {
		name string
		sql  func(cur *readstore.Cursor, page int) (string, []any)
		read func(cur *readstore.Cursor, page int) error
	}{
		{"a buyer's orders", func(cur *readstore.Cursor, page int) (string, []any) {
			return ordersSQL("buyer_id", OrderFilter{UserID: owner}, cur, page)
		}, func(cur *readstore.Cursor, page int) error {
			_, _, err := s.ListOrders(ctx, OrderFilter{UserID: owner, Role: RoleBuyer}, cur, page)
			return err
		}},
		{"a buyer's orders of one status", func(cur *readstore.Cursor, page int) (string, []any) {
			return ordersSQL("buyer_id", OrderFilter{UserID: owner, Status: "PENDING"}, cur, page)
		}, func(cur *readstore.Cursor, page int) error {
			_, _, err := s.ListOrders(ctx, OrderFilter{UserID: owner, Role: RoleBuyer, Status: "PENDING"}, cur, page)
			return err
		}},
		{"a seller's reviews", func(cur *readstore.Cursor, page int) (string, []any) {
			return ownerSQL("search_reviews", "seller_id = $1::uuid", []any{owner}, cur, page)
		}, func(cur *readstore.Cursor, page int) error {
			_, _, err := s.ListSellerReviews(ctx, owner, cur, page)
			return err
		}},
	}
	var out strings.Builder
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "shape\tpage\tfrom\tplan\trows read\tp50 ms\tp99 ms\n")
	for _, sh := range shapes {
		for _, page := range []int{20, 100} {
			for _, from := range []struct {
				name string
				cur  *readstore.Cursor
			}{{"first", nil}, {"middle", later}} {
				sql, args := sh.sql(from.cur, page)
				plan, read := explainOwner(t, s, sql, args)
				if read > page+1 || !strings.Contains(plan, "Index Scan") && !strings.Contains(plan, "Bitmap") {
					t.Errorf("%s, page %d from the %s: read %d rows (bound %d) by %s", sh.name, page, from.name, read, page+1, plan)
				}
				p50, p99 := "-", "-"
				if *planRuns > 0 {
					var ds []time.Duration
					for range *planRuns {
						t0 := time.Now()
						if err := sh.read(from.cur, page); err != nil {
							t.Fatal(err)
						}
						ds = append(ds, time.Since(t0))
					}
					slices.Sort(ds)
					p50 = fmt.Sprintf("%.2f", float64(ds[len(ds)/2].Microseconds())/1000)
					p99 = fmt.Sprintf("%.2f", float64(ds[len(ds)*99/100].Microseconds())/1000)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", sh.name, page, from.name, plan, read, p50, p99)
			}
		}
	}
	tw.Flush()
	t.Logf("%d orders and reviews, %d of them the owner's:\n%s", *ownerPlanRows, len(mine), out.String())
}

// explainOwner runs an owner list's statement under EXPLAIN ANALYZE and
// returns its scans and the rows they read (produced or filtered out).
func explainOwner(t *testing.T, s *Store, sql string, args []any) (string, int) {
	t.Helper()
	var raw []byte
	if err := s.pool.QueryRow(context.Background(), "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var doc []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var scans []string
	read := 0
	var walk func(n planNode)
	walk = func(n planNode) {
		if strings.HasPrefix(n.Relation, "orders_g") || strings.HasPrefix(n.Relation, "reviews_g") {
			name := n.Type
			if n.Direction == "Backward" {
				name += " Backward"
			}
			if n.Index != "" {
				name += " " + strings.SplitN(n.Index, "_", 3)[2]
			}
			scans = append(scans, name)
			read += int(n.Rows+n.Filtered+n.Rechecked) * max(n.Loops, 1)
		}
		if n.Type == "Sort" {
			scans = append(scans, "Sort")
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	return strings.Join(scans, " > "), read
}

// TestMigrateAddsOwnerListsToOlderGenerations: a store whose generations
// were made before the owner lists gets their tables, indexes and views
// from Migrate, and its lists answer (empty, until a rebuild fills them).
func TestMigrateAddsOwnerListsToOlderGenerations(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	g := live(t, s)
	if _, err := s.pool.Exec(ctx, fmt.Sprintf(`DROP VIEW search_orders, search_reviews; DROP TABLE orders_g%[1]d, reviews_g%[1]d`, g)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ListOrders(ctx, OrderFilter{UserID: uuid.NewString(), Role: RoleBuyer}, nil, 20); err == nil {
		t.Fatal("the lists answered without their tables")
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	buyer := uuid.NewString()
	apply(t, s, Batch{Position: 10, Orders: []readstore.Order{order(1, buyer, uuid.NewString(), "PAID", 10)}})
	docs, _, err := s.ListOrders(ctx, OrderFilter{UserID: buyer, Role: RoleBuyer}, nil, 20)
	if err != nil || len(docs) != 1 {
		t.Fatalf("after Migrate: %d orders, %v", len(docs), err)
	}
	if _, _, err := s.ListSellerReviews(ctx, buyer, nil, 20); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename IN ($1, $2)`,
		ordersTable(g), reviewsTable(g)).Scan(&n); err != nil || n != 2+5 { // two primary keys, five B-trees
		t.Fatalf("%d indexes on the owner lists after Migrate (%v), want 7", n, err)
	}
}
