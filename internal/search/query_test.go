package search

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestKeywordsMatchStems(t *testing.T) {
	s := newStore(t, Options{})
	chair, lamp, cafe := listing(1, "Oak chair"), listing(2, "Desk lamp"), listing(3, "Café table")
	lamp.Description = "Lights a room while running"
	cafe.Description = "Painted creme white"
	apply(t, s, Batch{Position: 2000, Listings: []Listing{chair, lamp, cafe}})
	for _, c := range []struct{ query, want string }{
		{"chairs", chair.ID},
		{"CHAIR", chair.ID},
		{"oak chairs", chair.ID},
		{"lighting", lamp.ID}, // "lights" and "lighting" share the stem "light"
		{"runs", lamp.ID},
		{"cafe", cafe.ID}, // accents fold both ways
		{"Crème", cafe.ID},
	} {
		p := search(t, s, Query{Text: c.query})
		if len(p.Listings) != 1 || p.Listings[0].ID != c.want {
			t.Errorf("%q found %d listings, want exactly %s", c.query, len(p.Listings), c.want)
		}
	}
	if p := search(t, s, Query{Text: "oak lamp"}); len(p.Listings) != 0 {
		t.Errorf(`"oak lamp" found %d listings: every word must match`, len(p.Listings))
	}
}

func TestRelevanceRanksAnExactTitleFirst(t *testing.T) {
	s := newStore(t, Options{})
	var rows []Listing
	for i := 0; i < 30; i++ {
		l := listing(i+10, fmt.Sprintf("Vintage red chair %d", i))
		l.Description = "A red chair, the chair you want: chair chair chair red red"
		rows = append(rows, l)
	}
	exact := listing(1, "Red chair") // the oldest, and its description says nothing
	rows = append(rows, exact)
	apply(t, s, Batch{Position: 3000, Listings: rows})
	p := search(t, s, Query{Text: "red chair"}) // no sort: relevance
	if len(p.Listings) == 0 || p.Listings[0].ID != exact.ID {
		t.Fatalf("the exact title match is not first: first is %q", p.Listings[0].Title)
	}
	ids := all(t, s, Query{Text: "red chair", PageSize: 7})
	if len(ids) != len(rows) {
		t.Fatalf("relevance paging found %d listings, want %d", len(ids), len(rows))
	}
	if _, err := s.Search(context.Background(), Query{Sort: SortRelevance}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("relevance without a query: %v, want ErrInvalid", err)
	}
}

func TestPageTokensAreBoundToTheirQuery(t *testing.T) {
	s := newStore(t, Options{})
	var rows []Listing
	for i := 0; i < 5; i++ {
		rows = append(rows, listing(i, "Chair"))
	}
	apply(t, s, Batch{Position: 2000, Listings: rows})
	p := search(t, s, Query{PageSize: 2})
	if p.Next == "" {
		t.Fatal("no next page token")
	}
	for name, q := range map[string]Query{
		"another filter":             {PageSize: 2, Category: "toys", PageToken: p.Next},
		"another sort":               {PageSize: 2, Sort: SortPriceAsc, PageToken: p.Next},
		"garbage":                    {PageToken: "not-a-token"},
		"a bad id":                   {PageToken: encodeToken(digest(Query{Status: StatusAvailable}, SortNewest), SortNewest, cursor{ID: "x"})},
		"another version":            {PageToken: strings.Replace(p.Next, "eyJ2Ijoy", "eyJ2Ijox", 1)},
		"a page size over the bound": {PageSize: 101},
	} {
		_, err := s.Search(context.Background(), q)
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want a FieldError", name, err)
		}
	}
	// The same query with another page size keeps its token.
	if _, err := s.Search(context.Background(), Query{PageSize: 3, PageToken: p.Next}); err != nil {
		t.Fatal(err)
	}
}

var words = []string{"red", "blue", "green", "oak", "pine", "steel", "glass", "retro"}

// catalogue makes n random listings over a few values of every field.
func catalogue(r *rand.Rand, n int) []Listing {
	sellers := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	out := make([]Listing, n)
	for i := range out {
		l := listing(i, words[r.IntN(len(words))]+" "+words[r.IntN(len(words))])
		l.Description = words[r.IntN(len(words))]
		l.Category = []string{"furniture", "toys", "books"}[r.IntN(3)]
		l.Condition = []string{"NEW", "GOOD", "FAIR"}[r.IntN(3)]
		l.Seller.ID = sellers[r.IntN(len(sellers))]
		l.Price = Money{Currency: []string{"EUR", "EUR", "USD"}[r.IntN(3)], Minor: int64(r.IntN(50) * 100)} // ties on price
		l.CreatedAt = epoch.Add(time.Duration(r.IntN(n/2)) * time.Second)                                   // ties on time
		l.Attributes = map[string]string{"colour": words[r.IntN(3)], "size": []string{"S", "M"}[r.IntN(2)]}
		if r.IntN(5) == 0 {
			l.Status = "SOLD"
		}
		out[i] = l
	}
	return out
}

// expect filters and orders the catalogue as the store should.
func expect(rows []Listing, q Query, sort Sort) []string {
	var out []Listing
	for _, l := range rows {
		text := strings.Fields(l.Title + " " + l.Description)
		ok := l.Status == q.Status &&
			(q.Category == "" || l.Category == q.Category) &&
			(q.Condition == "" || l.Condition == q.Condition) &&
			(q.SellerID == "" || l.Seller.ID == q.SellerID) &&
			(q.Currency == "" || l.Price.Currency == q.Currency) &&
			(q.MinPrice == nil || l.Price.Minor >= *q.MinPrice) &&
			(q.MaxPrice == nil || l.Price.Minor <= *q.MaxPrice)
		for k, v := range q.Attributes {
			ok = ok && l.Attributes[k] == v
		}
		for _, w := range strings.Fields(q.Text) {
			ok = ok && slices.Contains(text, w)
		}
		if ok {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b Listing) int {
		switch sort {
		case SortPriceAsc:
			if c := cmpInt(a.Price.Minor, b.Price.Minor); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		case SortPriceDesc:
			if c := cmpInt(b.Price.Minor, a.Price.Minor); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		default:
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		}
	})
	ids := make([]string, len(out))
	for i, l := range out {
		ids[i] = l.ID
	}
	return ids
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Every filter, alone and combined, under every sort, paged in small
// pages, returns exactly what filtering and sorting the rows in Go does.
func TestEveryShapePagesInOrder(t *testing.T) {
	s := newStore(t, Options{})
	r := rand.New(rand.NewPCG(1, 2))
	rows := catalogue(r, 400)
	apply(t, s, Batch{Position: 5000, Listings: rows})
	lo, hi := int64(1000), int64(3000)
	seller := rows[0].Seller.ID
	shapes := map[string]Query{
		"all":                {},
		"sold":               {Status: "SOLD"},
		"keyword":            {Text: "oak"},
		"two keywords":       {Text: "oak red"},
		"category":           {Category: "toys"},
		"condition":          {Condition: "NEW"},
		"seller":             {SellerID: seller},
		"price range":        {Currency: "EUR", MinPrice: &lo, MaxPrice: &hi},
		"attribute":          {Attributes: map[string]string{"colour": "red"}},
		"two attributes":     {Attributes: map[string]string{"colour": "red", "size": "M"}},
		"everything at once": {Text: "oak", Category: "furniture", Condition: "GOOD", Currency: "EUR", MinPrice: &lo, Attributes: map[string]string{"size": "S"}},
	}
	for name, q := range shapes {
		for _, sort := range []Sort{SortNewest, SortPriceAsc, SortPriceDesc} {
			q := q
			q.Sort, q.PageSize = sort, 9
			got := all(t, s, q)
			eq := q
			eq.Status = cmpOr(q.Status, StatusAvailable)
			want := expect(rows, eq, sort)
			if len(want) == 0 && name != "everything at once" {
				t.Fatalf("%s: the catalogue has no match; the test needs one", name)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s, %s: got %d listings, want %d, or another order", name, sort, len(got), len(want))
			}
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// While listings are created, sold and edited, paging through a query
// returns every listing that matched throughout exactly once, and no
// listing twice, under every sort.
func TestPagingWhileRowsChange(t *testing.T) {
	s := newStore(t, Options{RelevanceCandidates: 1000})
	r := rand.New(rand.NewPCG(3, 4))
	rows := catalogue(r, 300)
	for i := range rows {
		rows[i].Status = StatusAvailable
		rows[i].Title += " lamp"
	}
	apply(t, s, Batch{Position: 5000, Listings: rows})
	stable := map[string]bool{}
	for _, l := range rows[:150] {
		stable[l.ID] = true // never touched below
	}
	for _, sort := range []Sort{SortNewest, SortPriceAsc, SortPriceDesc, SortRelevance} {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		lsn := int64(10000 * (int(sort) + 1))
		go func() { // the writer: new listings, sales and renames among the rest
			defer wg.Done()
			w := rand.New(rand.NewPCG(uint64(sort), 5))
			for ctx.Err() == nil {
				lsn++
				n := listing(w.IntN(300), "new lamp")
				n.LSN = lsn
				old := rows[150+w.IntN(150)]
				old.LSN = lsn
				if w.IntN(2) == 0 {
					old.Status = "SOLD"
				} else {
					old.Seller.DisplayName = fmt.Sprint("seller ", lsn)
				}
				if err := s.Apply(ctx, live(t, s), Batch{Position: lsn, Listings: []Listing{n, old}}); err != nil && ctx.Err() == nil {
					t.Error(err)
				}
			}
		}()
		q := Query{Sort: sort, PageSize: 11}
		if sort == SortRelevance {
			q.Text = "lamp"
		}
		var got []string
		for {
			p := search(t, s, q)
			for _, l := range p.Listings {
				got = append(got, l.ID)
			}
			time.Sleep(2 * time.Millisecond)
			if p.Next == "" {
				break
			}
			q.PageToken = p.Next
		}
		cancel()
		wg.Wait()
		seen := map[string]int{}
		for _, id := range got {
			seen[id]++
			if seen[id] > 1 {
				t.Errorf("%s: listing %s appeared twice", sort, id)
			}
		}
		for id := range stable {
			if seen[id] != 1 {
				t.Errorf("%s: a listing that matched throughout appeared %d times", sort, seen[id])
			}
		}
	}
}

// While a rebuild loads a new generation and switches to it, a reader
// always finds the whole catalogue.
func TestGenerationSwitchHasNoGap(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	rows := catalogue(rand.New(rand.NewPCG(5, 6)), 60)
	for i := range rows {
		rows[i].Status = StatusAvailable
	}
	old := live(t, s)
	apply(t, s, Batch{Position: 5000, Listings: rows})

	stop := make(chan struct{})
	var reads int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			p, err := s.Search(ctx, Query{PageSize: 100})
			if err != nil {
				t.Errorf("a search during the switch failed: %v", err)
				return
			}
			if len(p.Listings) != len(rows) {
				t.Errorf("a search during the switch found %d listings, want %d", len(p.Listings), len(rows))
				return
			}
			cs, _, err := s.Categories(ctx)
			if err != nil || len(cs) == 0 {
				t.Errorf("categories during the switch: %v, %v", cs, err)
				return
			}
			reads++
		}
	}()
	for round := 0; round < 3; round++ {
		g, err := s.CreateGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(ctx, g.ID, rows); err != nil {
			t.Fatal(err)
		}
		if err := s.Seal(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Switch(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Drop(ctx, old); err != nil {
			t.Fatal(err)
		}
		if err := s.Drop(ctx, g.ID); err == nil {
			t.Fatal("the live generation was dropped")
		}
		old = g.ID
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if reads < 3 {
		t.Fatalf("only %d reads ran during the switches", reads)
	}
	gs, err := s.Generations(ctx)
	if err != nil || len(gs) != 1 || gs[0].ID != old || gs[0].State != StateLive {
		t.Fatalf("generations after the rebuilds: %+v, %v", gs, err)
	}
}

// TestKeywordFloodLeavesConnections: a flood of the costliest shape (a
// keyword ranked by relevance over thousands of matches) holds at most
// half the pool's connections, and the other shapes keep answering
// beside it.
func TestKeywordFloodLeavesConnections(t *testing.T) {
	base := newStore(t, Options{})
	const n = 3000
	rows := make([]Listing, n)
	for i := range rows {
		rows[i] = listing(i, fmt.Sprintf("Lamp number %d", i))
		rows[i].Description = "A brass lamp with a shade, lamp oil not included."
	}
	apply(t, base, Batch{Position: 5000, Listings: rows})
	cfg := base.Pool().Config().Copy()
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := pgx.Connect(context.Background(), cfg.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var flood sync.WaitGroup
	var ranked atomic.Int64
	for range 16 {
		flood.Add(1)
		go func() {
			defer flood.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Search(ctx, Query{Text: "lamp", Sort: SortRelevance}); err != nil {
					t.Error(err)
					return
				}
				ranked.Add(1)
			}
		}()
	}
	// Meanwhile: how many ranking queries run at once, and the other
	// shapes answer.
	most := 0
	for i := 0; i < 200 && ctx.Err() == nil; i++ {
		var active int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND query LIKE '%ts_rank%' AND pid <> pg_backend_pid()`).Scan(&active); err != nil {
			t.Fatal(err)
		}
		most = max(most, active)
		if i%20 == 0 {
			if _, err := s.Search(ctx, Query{Sort: SortPriceAsc, PageSize: 20}); err != nil {
				t.Fatalf("a price-sorted page beside the flood: %v", err)
			}
			if _, _, err := s.Categories(ctx); err != nil {
				t.Fatalf("the categories beside the flood: %v", err)
			}
		}
	}
	close(stop)
	flood.Wait()
	if ranked.Load() == 0 {
		t.Fatal("the flood ranked nothing")
	}
	if most > 2 {
		t.Fatalf("%d keyword searches held connections at once out of a pool of 4, want at most 2", most)
	}
	t.Logf("%d ranked searches; at most %d at once", ranked.Load(), most)
}
