package search

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
)

// go test ./internal/search -run Plans -search.rows=1000000 -search.runs=50 -v
// loads a catalogue of that size and prints, per shape, its plan, the
// rows it read, its bound and its time.
var (
	planRows = flag.Int("search.rows", 100_000, "listings TestPlans loads")
	planRuns = flag.Int("search.runs", 0, "timed runs per shape (0: only check the bounds)")
	planKeep = flag.Bool("search.keep", false, "keep TestPlans' database, to study its plans")
)

// The synthetic catalogue: every row has one of ten common words (10 %
// each) and one of a thousand rare ones (0.1 % each) in its title, one of
// ten categories and ten colours, one of five conditions; one seller has
// 5 % of the listings; 90 % are available, all in EUR.
const (
	planCommon = 10
	planRare   = 1000
	planCats   = 10
	planConds  = 5
)

var planConditions = []string{"NEW", "LIKE_NEW", "GOOD", "FAIR", "POOR"}

func planCatalogue(r *rand.Rand, from, n int, bigSeller string, sellers []string) []Listing {
	out := make([]Listing, n)
	for j := range out {
		i := from + j
		seller := sellers[r.IntN(len(sellers))]
		if r.IntN(20) == 0 {
			seller = bigSeller
		}
		status := StatusAvailable
		if r.IntN(10) == 0 {
			status = "SOLD"
		}
		at := epoch.Add(time.Duration(i) * time.Second)
		out[j] = Listing{
			ID:          uuid.Must(uuid.NewV7()).String(),
			Seller:      Seller{ID: seller, DisplayName: "seller", RatingAverage: 4, RatingCount: 3},
			Title:       fmt.Sprintf("common%d rare%d %s", r.IntN(planCommon), r.IntN(planRare), words[r.IntN(len(words))]),
			Description: strings.Repeat(words[r.IntN(len(words))]+" ", 1+r.IntN(20)),
			Category:    fmt.Sprintf("cat%d", r.IntN(planCats)),
			Condition:   planConditions[r.IntN(planConds)],
			Price:       Money{Currency: "EUR", Minor: int64(r.IntN(100_000))},
			Attributes:  map[string]string{"colour": fmt.Sprintf("c%d", r.IntN(10)), "size": fmt.Sprint(r.IntN(5))},
			Status:      status,
			Version:     1,
			CreatedAt:   at,
			UpdatedAt:   at,
			LSN:         1,
		}
	}
	return out
}

// planShape is a query and the most rows its plan may read at a page size.
type planShape struct {
	name  string
	query func(i int) Query // i varies the parameters between runs
	// sel is the share of available listings that match, or 0 when an
	// index reads exactly a page.
	sel float64
	// cap, when set, bounds the rows an ordered walk must produce before
	// the page (the relevance candidates).
	cap int
}

func planShapes(bigSeller string) []planShape {
	lo := func(i int) *int64 { v := int64(i%10) * 10_000; return &v }
	hi := func(i int) *int64 { v := int64(i%10)*10_000 + 9_999; return &v }
	return []planShape{
		{"landing: available, newest", func(int) Query { return Query{} }, 0, 0},
		{"available, price ascending", func(int) Query { return Query{Sort: SortPriceAsc} }, 0, 0},
		{"available, price descending", func(int) Query { return Query{Sort: SortPriceDesc} }, 0, 0},
		{"category, newest", func(i int) Query { return Query{Category: fmt.Sprintf("cat%d", i%planCats)} }, 0, 0},
		{"category, price ascending", func(i int) Query { return Query{Category: fmt.Sprintf("cat%d", i%planCats), Sort: SortPriceAsc} }, 0, 0},
		{"seller (5 %), newest", func(int) Query { return Query{SellerID: bigSeller} }, 0, 0},
		{"seller (5 %), price descending", func(int) Query { return Query{SellerID: bigSeller, Sort: SortPriceDesc} }, 0, 0},
		{"condition (20 %), newest", func(i int) Query { return Query{Condition: planConditions[i%planConds]} }, 0.2, 0},
		{"price range (10 %), newest", func(i int) Query { return Query{Currency: "EUR", MinPrice: lo(i), MaxPrice: hi(i)} }, 0.1, 0},
		{"price range (10 %), price ascending", func(i int) Query {
			return Query{Currency: "EUR", MinPrice: lo(i), MaxPrice: hi(i), Sort: SortPriceAsc}
		}, 0, 0},
		{"attribute (10 %), newest", func(i int) Query {
			return Query{Attributes: map[string]string{"colour": fmt.Sprintf("c%d", i%10)}}
		}, 0.1, 0},
		{"keyword (10 %), newest", func(i int) Query { return Query{Text: fmt.Sprintf("common%d", i%planCommon), Sort: SortNewest} }, 0.1, 0},
		{"keyword (10 %), price ascending", func(i int) Query {
			return Query{Text: fmt.Sprintf("common%d", i%planCommon), Sort: SortPriceAsc}
		}, 0.1, 0},
		{"keyword (10 %), price descending", func(i int) Query {
			return Query{Text: fmt.Sprintf("common%d", i%planCommon), Sort: SortPriceDesc}
		}, 0.1, 0},
		{"keyword (0.1 %), newest", func(i int) Query { return Query{Text: fmt.Sprintf("rare%d", i%planRare), Sort: SortNewest} }, 0.001, 0},
		{"two keywords (2 %), price ascending", func(i int) Query {
			return Query{Text: fmt.Sprintf("common%d %s", i%planCommon, words[i%len(words)]), Sort: SortPriceAsc}
		}, 0.02, 0},
		{"keyword (10 %), relevance", func(i int) Query { return Query{Text: fmt.Sprintf("common%d", i%planCommon)} }, 0.1, 1000},
	}
}

// bound is the most rows a shape's plan may read at a page size among
// n available listings. A filter that leads an index reads a page and one
// row. A filter that no B-tree leads with has two plans, which the
// planner picks between by estimated cost: it walks a sort index until a
// page of matches (about page/sel rows; the bound allows twice that), or
// it fetches every match from a GIN index and sorts them (the bound
// allows three times the matches). Relevance walks until its candidates.
func (sh planShape) bound(page, available int, plan string) int {
	want := page + 1
	if sh.cap > 0 {
		want = sh.cap
	}
	if sh.sel == 0 {
		return want + 1
	}
	if strings.Contains(plan, "Bitmap") {
		return 3 * (int(sh.sel*float64(available)) + 100)
	}
	return int(2 * float64(want) / sh.sel)
}

func TestPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a catalogue")
	}
	keep[t.Name()] = *planKeep
	s := newStore(t, Options{})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	bigSeller := uuid.NewString()
	sellers := make([]string, 1000)
	for i := range sellers {
		sellers[i] = uuid.NewString()
	}
	start := time.Now()
	g, err := s.CreateGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	available := 0
	var sample []Listing // listings to update in the timed batches
	for from := 0; from < *planRows; from += 20_000 {
		rows := planCatalogue(r, from, min(20_000, *planRows-from), bigSeller, sellers)
		for _, l := range rows {
			if l.Status == StatusAvailable {
				available++
			}
		}
		if _, err := s.Load(ctx, g.ID, rows); err != nil {
			t.Fatal(err)
		}
		sample = append(sample, rows[:min(len(rows), 500)]...)
	}
	loaded := time.Since(start)
	if err := s.Seal(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Switch(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d listings loaded by COPY in %s, sealed (indexes, counts, statistics) in %s",
		*planRows, loaded.Round(time.Millisecond), (time.Since(start) - loaded).Round(time.Millisecond))

	var out strings.Builder
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "shape\tpage\tplan\trows read\tbound\tp50 ms\tp99 ms\n")
	for _, sh := range planShapes(bigSeller) {
		for _, page := range []int{20, 100} {
			q := sh.query(0)
			q.PageSize = page
			plan, read, err := s.explain(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", sh.name, err)
			}
			bound := sh.bound(page, available, plan)
			if read > bound {
				t.Errorf("%s, page %d: read %d rows, bound %d; plan %s", sh.name, page, read, bound, plan)
			}
			p50, p99 := "-", "-"
			if *planRuns > 0 {
				var ds []time.Duration
				for i := 0; i < *planRuns; i++ {
					q := sh.query(i + 1)
					q.PageSize = page
					t0 := time.Now()
					if _, err := s.Search(ctx, q); err != nil {
						t.Fatal(err)
					}
					ds = append(ds, time.Since(t0))
				}
				slices.Sort(ds)
				p50 = fmt.Sprintf("%.2f", float64(ds[len(ds)/2].Microseconds())/1000)
				p99 = fmt.Sprintf("%.2f", float64(ds[(len(ds)*99)/100].Microseconds())/1000)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\n", sh.name, page, plan, read, bound, p50, p99)
		}
	}
	if *planRuns > 0 {
		// What the CDC pays per batch: the upsert, and the recount of the
		// categories it touched from the rows.
		for _, size := range []int{1, 100} {
			var ds []time.Duration
			for i := 0; i < *planRuns; i++ {
				batch := make([]Listing, size)
				for j := range batch {
					l := sample[(i*size+j)%len(sample)]
					l.LSN = int64(10 + i)
					l.Price.Minor++
					batch[j] = l
				}
				t0 := time.Now()
				if err := s.Apply(ctx, g.ID, Batch{Position: int64(10 + i), Listings: batch}); err != nil {
					t.Fatal(err)
				}
				ds = append(ds, time.Since(t0))
			}
			slices.Sort(ds)
			fmt.Fprintf(tw, "Apply: a batch of %d listings\t\t\t\t\t%.2f\t%.2f\n", size,
				float64(ds[len(ds)/2].Microseconds())/1000, float64(ds[(len(ds)*99)/100].Microseconds())/1000)
		}
	}
	tw.Flush()
	t.Logf("%d listings (%d available):\n%s", *planRows, available, out.String())
	if f := os.Getenv("SEARCH_PLANS_OUT"); f != "" {
		if err := os.WriteFile(f, []byte(out.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// explain runs a query under EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) and
// returns its scans, in plan order, and the rows they read: the rows each
// scan of the listings produced or removed by a filter or a recheck.
func (s *Store) explain(ctx context.Context, q Query) (string, int, error) {
	p, err := s.plan(q)
	if err != nil {
		return "", 0, err
	}
	sql, args := s.sql(p)
	var raw []byte
	if err := s.pool.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		return "", 0, err
	}
	var doc []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", 0, err
	}
	var scans []string
	read := 0
	depth := -1
	var walk func(n planNode)
	walk = func(n planNode) {
		depth++
		defer func() { depth-- }()
		if strings.HasPrefix(n.Relation, "listings_g") || strings.HasPrefix(n.Index, "listings_g") {
			name := n.Type
			if n.Index != "" {
				name += " " + strings.SplitN(n.Index, "_", 3)[2]
			}
			if n.Type == "Index Scan" && n.Direction == "Backward" {
				name = "Index Scan Backward " + strings.SplitN(n.Index, "_", 3)[2]
			}
			scans = append(scans, name)
			if n.Type != "Bitmap Index Scan" { // its rows are the heap scan's
				read += int(n.Rows+n.Filtered+n.Rechecked) * max(n.Loops, 1)
			}
		}
		if n.Type == "Sort" && n.SortMethod != "" && depth > 0 { // the root sorts the page itself
			scans = append(scans, n.SortMethod)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	return strings.Join(scans, " > "), read, nil
}

type planNode struct {
	Type       string     `json:"Node Type"`
	Relation   string     `json:"Relation Name"`
	Index      string     `json:"Index Name"`
	Direction  string     `json:"Scan Direction"`
	SortMethod string     `json:"Sort Method"`
	Rows       float64    `json:"Actual Rows"`
	Loops      int        `json:"Actual Loops"`
	Filtered   float64    `json:"Rows Removed by Filter"`
	Rechecked  float64    `json:"Rows Removed by Index Recheck"`
	Plans      []planNode `json:"Plans"`
}
