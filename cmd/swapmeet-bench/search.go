package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
)

// The search suite, on a catalogue of -search-catalogue listings in the
// search store (loaded as `projections rebuild` loads it: documents built
// from Postgres, COPY into a new generation, Seal, Switch), with the CDC
// and the API in this process:
//
//   - each shape of the plans table cold: before each run a listing
//     changes through the API and the run waits for its token to be
//     applied, so the page epoch has moved and no cached page answers; the
//     run then asks SearchListings over Connect with that token and a
//     parameter of its own (category, word, price band, ...). The
//     reference is the SQL the API sent for that run, captured from the
//     API's own search pool, run again under EXPLAIN ANALYZE: its
//     execution time in the search store;
//   - the landing page under h2load while listings change at
//     searchLoadWrites a second, against the Connect ceiling (Health/Check);
//   - CDC freshness (commit to applied) with the search write and without
//     it (the projector wired without the search store), in alternating
//     rounds of the same run.
//
// Mongo holds only the documents of the listings the suite writes: no
// figure reads any other.

const (
	searchStrictP99  = 50 * time.Millisecond  // landing page, a sort with at most one equality filter
	searchOtherP99   = 100 * time.Millisecond // every other shape
	searchLoadConns  = 16
	searchLoadWrites = 10.0 // listing writes a second during the h2load figure and the freshness rounds
	searchLoadP99    = 50 * time.Millisecond
	searchFreshRatio = 1.2 // freshness with the search write over without, at most
	searchFreshPairs = 3   // rounds of each wiring, alternating
	searchTargets    = 2000
	searchLoadPage   = 2000 // listings a Build and a Load take at a time
	searchBigSellers = 2    // each with 5 % of the listings
)

// coldShape is a SearchListings shape; req varies its parameter with the run.
type coldShape struct {
	name   string
	strict bool // the landing page, or a sort with at most one equality filter
	req    func(i int) *swapmeetv1.SearchListingsRequest
}

func coldShapes(bigSellers []string) []coldShape {
	eur := func(v int64) *swapmeetv1.Money { return &swapmeetv1.Money{CurrencyCode: "EUR", AmountMinor: v} }
	noun := func(i int) string { return catalogueNouns[i%len(catalogueNouns)] }
	conditions := []swapmeetv1.Condition{swapmeetv1.Condition_CONDITION_NEW, swapmeetv1.Condition_CONDITION_LIKE_NEW,
		swapmeetv1.Condition_CONDITION_GOOD, swapmeetv1.Condition_CONDITION_FAIR, swapmeetv1.Condition_CONDITION_POOR}
	colors := []string{"red", "blue", "green", "black", "white", "brown"}
	return []coldShape{
		{"landing: available, newest", true, func(int) *swapmeetv1.SearchListingsRequest { return &swapmeetv1.SearchListingsRequest{} }},
		{"available, price ascending", true, func(int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC}
		}},
		{"available, price descending", true, func(int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_DESC}
		}},
		{"one category (5 %), newest", true, func(i int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{Category: catalogueCategories[i%len(catalogueCategories)]}
		}},
		{"one category (5 %), price ascending", true, func(i int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{Category: catalogueCategories[i%len(catalogueCategories)], Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC}
		}},
		{"one seller (5 %), newest", true, func(i int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{SellerId: bigSellers[i%len(bigSellers)]}
		}},
		{"a condition (20 %), newest", true, func(i int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{Condition: conditions[i%len(conditions)]}
		}},
		{"a price range (10 %), newest", false, func(i int) *swapmeetv1.SearchListingsRequest {
			lo := int64(i%10) * 10_000
			return &swapmeetv1.SearchListingsRequest{MinPrice: eur(lo), MaxPrice: eur(lo + 9_999)}
		}},
		{"an attribute (17 %), newest", false, func(i int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{Attributes: map[string]string{"color": colors[i%len(colors)]}}
		}},
		{"one keyword (0.1 %), newest", false, func(i int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{Query: fmt.Sprintf("series%d", (i*37)%1000), Sort: swapmeetv1.SearchSort_SEARCH_SORT_NEWEST}
		}},
		{"a keyword (11 %), price ascending", false, func(i int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{Query: noun(i), Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC}
		}},
		{"a keyword (11 %), price descending", false, func(i int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{Query: noun(i), Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_DESC}
		}},
		{"a keyword (11 %), relevance", false, func(i int) *swapmeetv1.SearchListingsRequest {
			return &swapmeetv1.SearchListingsRequest{Query: noun(i)}
		}},
	}
}

type searchFixture struct {
	e          *env
	api        *api
	client     swapmeetv1connect.ListingServiceClient
	watcher    *cache.Watcher
	traced     *sqlTracer
	ref        *pgxpool.Pool // the search store, for the references
	targets    []*freshTarget
	next       int
	bigSellers []string
	size       string
	available  int64
	dir        string // h2load's files
	cdcStop    func() error
	loads      []float64 // the machine's 1-minute load average, sampled after each figure
}

// sampleLoad records the machine's 1-minute load average, and returns it.
func (fx *searchFixture) sampleLoad() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	var v float64
	if _, serr := fmt.Sscanf(string(b), "%f", &v); err != nil || serr != nil {
		return 0
	}
	fx.loads = append(fx.loads, v)
	return v
}

// loadRow says how busy the machine was while the figures ran.
func (fx *searchFixture) loadRow() row {
	r := info(fmt.Sprintf("Machine load while the figures above ran (1-minute load average, %d samples, %d cores)", len(fx.loads), runtime.NumCPU()),
		"not read", "", "", "- (context: other processes share the cores)")
	if len(fx.loads) > 0 {
		r.measured = fmt.Sprintf("min %.1f, median %.1f, max %.1f", slices.Min(fx.loads), median(fx.loads, func(v float64) float64 { return v }), slices.Max(fx.loads))
	}
	return r
}

func runSearch(ctx context.Context, o options) ([]row, error) {
	if o.searchCatalogue < 20*searchTargets {
		return nil, fmt.Errorf("need -search-catalogue >= %d, not %d", 20*searchTargets, o.searchCatalogue)
	}
	if o.searchRuns < 10 {
		return nil, fmt.Errorf("need -search-runs >= 10, not %d", o.searchRuns)
	}
	return withEnv(ctx, func(e *env) (rows []row, err error) {
		defer recovered(&err)
		fx, setup := setUpSearch(ctx, e, o.searchCatalogue)
		rows = []row{setup}
		more, err := measureAll(ctx, []figure{
			{"SearchListings cold", func() ([]row, error) { return fx.measureCold(ctx, o.searchRuns) }},
			{"SearchListings landing page under load", func() ([]row, error) { return fx.measureLoad(ctx, o.searchLoadFor) }},
			{"CDC freshness with and without the search write", func() ([]row, error) { return fx.measureFreshness(ctx, o.duration) }},
		})
		return append(append(rows, more...), fx.loadRow()), err
	})
}

// setUpSearch loads the catalogue and starts the CDC and the API.
func setUpSearch(ctx context.Context, e *env, n int) (*searchFixture, row) {
	fx := &searchFixture{e: e, size: sizeLabel(n)}
	seeded := seedSearchCatalogue(ctx, e, n)
	fx.bigSellers = must(pgx.CollectRows(must(e.PG.Query(ctx, `SELECT id::text FROM users WHERE display_name LIKE 'bench big seller %' ORDER BY display_name`)), pgx.RowTo[string]))
	lsn := currentLSN(ctx, e.PG)
	loaded, sealed := loadSearchStore(ctx, e, int64(lsn))
	check(e.PG.QueryRow(ctx, `SELECT count(*) FROM listings WHERE status = 'AVAILABLE'`).Scan(&fx.available))
	// The listings the suite writes, with their documents in Mongo.
	targetRows := must(e.PG.Query(ctx, `SELECT id::text, seller_id, version, price_minor FROM listings WHERE status = 'AVAILABLE' ORDER BY random() LIMIT $1`, searchTargets))
	fx.targets = must(pgx.CollectRows(targetRows, func(row pgx.CollectableRow) (*freshTarget, error) {
		t := &freshTarget{}
		return t, row.Scan(&t.id, &t.seller, &t.version, &t.price)
	}))
	ids := make([]uuid.UUID, len(fx.targets))
	for i, t := range fx.targets {
		ids[i] = uuid.MustParse(t.id)
	}
	docs := make([]any, 0, len(ids))
	for _, d := range listingDocs(ctx, e.PG, ids, int64(lsn)) {
		docs = append(docs, d)
	}
	check(e.Reads.InsertMany(ctx, readstore.Listings, docs))
	firstStart(ctx, e)
	fx.cdcStop = e.startCDCOn(ctx, e.Clients())
	e.waitForSlot(ctx)
	// The API's search store on a pool of its own that records the SQL it
	// sends, configured as search.Open configured the env's.
	fx.traced = &sqlTracer{}
	pcfg := e.Search.Pool().Config()
	pcfg.ConnConfig.Tracer = fx.traced
	pool := must(pgxpool.NewWithConfig(ctx, pcfg))
	e.OnClose(func() error { pool.Close(); return nil })
	clients := *e.Clients()
	clients.Search = must(search.New(pool, e.Config.Search))
	fx.ref = e.Search.Pool()
	fx.api = e.startAPIOn(&clients, nil)
	fx.client = swapmeetv1connect.NewListingServiceClient(h2c(), fx.api.url)
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.OnClose(func() error { cancel(); return nil })
	fx.watcher = cache.NewWatcher(e.Redis, cache.AppliedKeysFor(e.Config.RedisPrefix), e.log)
	go fx.watcher.Run(wctx)
	fx.dir = must(os.MkdirTemp("", "swapmeet-bench-search-"))
	e.OnClose(func() error { return os.RemoveAll(fx.dir) })
	fx.write(ctx) // the pipeline works end to end
	return fx, info(fmt.Sprintf("Search catalogue: %s listings (%d available), %d sellers", fx.size, fx.available, 500+searchBigSellers),
		fmt.Sprintf("Postgres %s; search store: COPY %s, Seal %s", seeded.Round(100*time.Millisecond), loaded.Round(100*time.Millisecond), sealed.Round(100*time.Millisecond)),
		"", "", "- (setup, as projections rebuild loads it)")
}

// seedSearchCatalogue inserts 500 sellers, two big sellers (5 % of the
// listings each) and n listings: titles of an adjective, a noun (17: one
// in 17 titles, and one in 17 descriptions) and a series word (1000: one
// in a thousand); 20 categories, 5 conditions, 6 colours, prices over
// 1-999 EUR; 90 % available, 10 % sold; created_at a second apart.
func seedSearchCatalogue(ctx context.Context, e *env, n int) time.Duration {
	start := time.Now()
	insertUsers(ctx, e.PG, "seller", 500)
	insertUsers(ctx, e.PG, "big seller", searchBigSellers)
	conn := backlogConn(ctx, e)
	defer conn.Close(context.WithoutCancel(ctx))
	for from := 1; from <= n; from += 250_000 {
		must(conn.Exec(ctx, fmt.Sprintf(`
			INSERT INTO listings (id, seller_id, title, description, category, condition,
			                      price_currency, price_minor, attributes, status, created_at, updated_at)
			SELECT gen_random_uuid(),
			       CASE WHEN g %% 10 = 0 THEN b.ids[1 + (g / 10) %% cardinality(b.ids)] ELSE s.ids[1 + g %% cardinality(s.ids)] END,
			       initcap(a.w[1 + g %% 13]) || ' ' || a.n[1 + (g / 13) %% 17] || ' series' || (g::bigint * 7919) %% 1000 || ', lot ' || g,
			       'A ' || a.w[1 + (g / 7) %% 13] || ' ' || a.n[1 + g %% 17] || ' in ' || lower(c.c[1 + g %% 5]) ||
			       ' condition. Collected in the ' || (1950 + 10 * (g %% 7)) || 's; ships within three days.',
			       a.cat[1 + (g / 3) %% 20], c.c[1 + g %% 5], 'EUR', 100 + (g::bigint * 7919) %% 99900,
			       jsonb_build_object('color', (ARRAY['red','blue','green','black','white','brown'])[1 + g %% 6],
			                          'size', (ARRAY['S','M','L','XL'])[1 + g %% 4], 'brand', 'brand' || g %% 50),
			       CASE WHEN (g / 11) %% 10 = 3 THEN 'SOLD' ELSE 'AVAILABLE' END,
			       now() - make_interval(secs => g), now() - make_interval(secs => g)
			FROM generate_series($1::int, $2::int) g,
			     (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE display_name LIKE 'bench seller %%') s,
			     (SELECT array_agg(id ORDER BY display_name) AS ids FROM users WHERE display_name LIKE 'bench big seller %%') b,
			     (SELECT %s AS w, %s AS n, %s AS cat) a,
			     (SELECT ARRAY['NEW','LIKE_NEW','GOOD','FAIR','POOR'] AS c) c`,
			sqlArray(catalogueAdjectives), sqlArray(catalogueNouns), sqlArray(catalogueCategories)), from, min(n, from+250_000-1)))
	}
	e.asOwner(ctx, "ANALYZE")
	progress("search: catalogue: %d listings in Postgres in %s", n, time.Since(start).Round(time.Millisecond))
	return time.Since(start)
}

// loadSearchStore loads every listing into a new search generation as a
// rebuild does (documents built from Postgres, stamped lsn, COPY), seals
// it and switches readers to it; it returns the load's and the seal's
// time. Two goroutines build documents while one copies.
func loadSearchStore(ctx context.Context, e *env, lsn int64) (loaded, sealed time.Duration) {
	start := time.Now()
	g := must(e.Search.CreateGeneration(ctx))
	q := sqlc.New(e.PG)
	listings := projection.For(readstore.Listings)
	var (
		batches = make(chan []uuid.UUID, 2)
		pages   = make(chan []search.Listing, 2)
		mu      sync.Mutex
		errs    []error
		fail    = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
		build   sync.WaitGroup
		load    sync.WaitGroup
		n       int
	)
	for range 2 {
		build.Go(func() {
			for ids := range batches {
				docs, err := listings.Build(ctx, q, ids, lsn)
				if err != nil {
					fail(err)
					continue
				}
				rows := make([]search.Listing, 0, len(docs))
				for _, d := range docs {
					rows = append(rows, search.FromDocument(d.(readstore.Listing)))
				}
				pages <- rows
			}
		})
	}
	load.Go(func() {
		for rows := range pages {
			if _, err := e.Search.Load(ctx, g.ID, rows); err != nil {
				fail(err)
			}
			if n += len(rows); n%200_000 < len(rows) {
				progress("search: store: %d rows loaded", n)
			}
		}
	})
	func() {
		defer close(batches)
		for ids := []uuid.UUID{uuid.Nil}; ; {
			var err error
			if ids, err = listings.IDs(ctx, q, ids[len(ids)-1], searchLoadPage); err != nil {
				fail(err)
				return
			}
			if len(ids) == 0 {
				return
			}
			batches <- ids
		}
	}()
	build.Wait()
	close(pages)
	load.Wait()
	check(errors.Join(errs...))
	loaded = time.Since(start)
	check(e.Search.Seal(ctx, g.ID))
	old := must(e.Search.Live(ctx))
	check(e.Search.Switch(ctx, g.ID))
	check(e.Search.Drop(ctx, old.ID))
	sealed = time.Since(start) - loaded
	progress("search: store: %d rows loaded by COPY in %s, sealed (indexes, counts, statistics) in %s", n, loaded.Round(time.Millisecond), sealed.Round(time.Millisecond))
	return loaded, sealed
}

// sqlTracer records the last search query a pool sent.
type sqlTracer struct {
	mu   sync.Mutex
	sql  string
	args []any
}

func (t *sqlTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "search_listings") {
		t.mu.Lock()
		t.sql, t.args = d.SQL, slices.Clone(d.Args)
		t.mu.Unlock()
	}
	return ctx
}

func (t *sqlTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the recorded query and forgets it.
func (t *sqlTracer) take() (string, []any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sql, args := t.sql, t.args
	t.sql, t.args = "", nil
	return sql, args
}

// write changes a listing's price through the API's commands and waits
// until its position is applied; it returns the write's token.
func (fx *searchFixture) write(ctx context.Context) string {
	t := fx.targets[fx.next%len(fx.targets)]
	fx.next++
	w := must(fx.api.app.Commands.UpdateListing(ctx, t.seller, t.id, t.version,
		app.ListingInput{Price: &app.Money{Currency: "EUR", Minor: t.price + 1}}, []string{"price"}))
	t.version, t.price = w.Version, t.price+1
	lsn := must(consistency.ParseWriteToken(w.ConsistencyToken)).LSN
	wctx, cancel := context.WithTimeout(ctx, freshWait)
	defer cancel()
	check(fx.watcher.Wait(wctx, lsn))
	return w.ConsistencyToken
}

// explain runs sql under EXPLAIN ANALYZE in the search store and returns its execution time.
func (fx *searchFixture) explain(ctx context.Context, sql string, args []any) time.Duration {
	var raw []byte
	check(fx.ref.QueryRow(ctx, "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) "+sql, args...).Scan(&raw))
	var doc []struct {
		Execution float64 `json:"Execution Time"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc) != 1 {
		check(fmt.Errorf("EXPLAIN output: %v: %.300s", err, raw))
	}
	return time.Duration(doc[0].Execution * float64(time.Millisecond))
}

// measureCold runs each shape runs times, cold, next to its SQL's execution time.
func (fx *searchFixture) measureCold(ctx context.Context, runs int) (rows []row, err error) {
	defer recovered(&err)
	for _, sh := range coldShapes(fx.bigSellers) {
		api, ref := make([]time.Duration, 0, runs), make([]time.Duration, 0, runs)
		for i := range runs {
			req := sh.req(i)
			req.ConsistencyToken = fx.write(ctx)
			fx.traced.take()
			t0 := time.Now()
			resp, err := fx.client.SearchListings(ctx, connect.NewRequest(req))
			took := time.Since(t0)
			check(err)
			sql, args := fx.traced.take()
			if sql == "" {
				check(fmt.Errorf("%s: SearchListings sent no query to the search store: a cached page answered a cold run", sh.name))
			}
			if got := len(resp.Msg.GetListings()); got != search.DefaultPageSize || resp.Msg.GetNextPageToken() == "" {
				check(fmt.Errorf("%s, run %d: a first page of %d listings (next page token %q); every shape matches more than a page", sh.name, i, got, resp.Msg.GetNextPageToken()))
			}
			api, ref = append(api, took), append(ref, fx.explain(ctx, sql, args))
		}
		a, r := summarize(api), summarize(ref)
		limit := searchOtherP99
		if sh.strict {
			limit = searchStrictP99
		}
		progress("search: cold %s: p50 %s, p99 %s, max %s; EXPLAIN ANALYZE execution p50 %s, p99 %s; load average %.1f",
			sh.name, ms(a.p50), ms(a.p99), ms(a.max), ms(r.p50), ms(r.p99), fx.sampleLoad())
		rows = append(rows, row{fmt.Sprintf("SearchListings cold, %s (page 20, %s listings, %d runs)", sh.name, fx.size, runs),
			fmt.Sprintf("p50 %s, p99 %s", ms(a.p50), ms(a.p99)),
			fmt.Sprintf("its SQL, EXPLAIN ANALYZE: p50 %s, p99 %s", msFine(r.p50), msFine(r.p99)),
			fmt.Sprintf("%s p50, %s p99", times(ratioOf(a.p50, r.p50)), times(ratioOf(a.p99, r.p99))),
			fmt.Sprintf("p99 < %d ms", limit.Milliseconds()), verdict(a.p99 < limit)})
	}
	return rows, nil
}

func ratioOf(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func msFine(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// attempt runs f, turning a check's failure into an error.
func attempt(f func()) (err error) {
	defer recovered(&err)
	f()
	return nil
}

// measureLoad drives the landing page with h2load while listings change, against the Connect ceiling.
func (fx *searchFixture) measureLoad(ctx context.Context, d time.Duration) (_ []row, err error) {
	defer recovered(&err)
	ceiling := runH2load(ctx, fx.dir, []string{fx.api.url + healthPath}, []byte("{}"), searchLoadConns, min(d, 5*time.Second))
	progress("search: h2load: Connect ceiling, Health/Check POST JSON, %d connections: %s", searchLoadConns, ceiling)
	landing := connectGet(fx.api.url, swapmeetv1connect.ListingServiceSearchListingsProcedure, &swapmeetv1.SearchListingsRequest{}, false)
	driver := &freshDriver{app: fx.api.app, watcher: fx.watcher, reads: fx.e.Reads, targets: fx.targets, next: fx.next}
	var (
		writes   freshStep
		writeErr error
		wrote    sync.WaitGroup
	)
	wrote.Go(func() { writeErr = attempt(func() { writes = driver.run(ctx, searchLoadWrites, d, false) }) })
	var res toolResult
	loadErr := attempt(func() { res = runH2load(ctx, fx.dir, []string{landing}, nil, searchLoadConns, d) })
	wrote.Wait()
	fx.next = driver.next
	check(writeErr)
	progress("search: h2load: landing page, %d connections, %s while listings change (%s): %s, max %s (%d answered); load average %.1f",
		searchLoadConns, d, writes, res, ms(res.lat.max), res.lat.n, fx.sampleLoad())
	r := row{fmt.Sprintf("SearchListings landing page under load (h2load, %d conns, %s, GET JSON, %s listings; %.0f listing writes/s)", searchLoadConns, d, fx.size, searchLoadWrites),
		"", fmt.Sprintf("Connect ceiling (Health/Check) %.0f/s", ceiling.rps), "", fmt.Sprintf("100 %% answered, p99 < %d ms", searchLoadP99.Milliseconds()), ""}
	if loadErr != nil {
		r.measured, r.verdict = "not every request answered with a 2xx: "+strings.ReplaceAll(loadErr.Error(), "\n", " "), verdictMiss
	} else {
		r.measured = fmt.Sprintf("%s, %d answered (100 %%); writes %s", res, res.lat.n, writes)
		r.ratio, r.verdict = times(res.rps/ceiling.rps)+" ceiling", verdict(res.lat.p99 < searchLoadP99)
	}
	return []row{r}, nil
}

// measureFreshness alternates rounds of the CDC with and without the
// search write, each writing at searchLoadWrites for d, and compares.
func (fx *searchFixture) measureFreshness(ctx context.Context, d time.Duration) (_ []row, err error) {
	defer recovered(&err)
	without := *fx.e.Clients()
	without.Search = nil // the projector writes documents only
	driver := &freshDriver{app: fx.api.app, watcher: fx.watcher, reads: fx.e.Reads, targets: fx.targets, next: fx.next}
	var with, off []time.Duration
	for round := range 2 * searchFreshPairs {
		searchOn := round%2 == 0
		check(fx.cdcStop())
		clients := fx.e.Clients()
		if !searchOn {
			clients = &without
		}
		fx.cdcStop = fx.e.startCDCOn(ctx, clients)
		driver.run(ctx, 2, 2*time.Second, false) // the new CDC is streaming
		step := driver.run(ctx, searchLoadWrites, d, false)
		if step.timeouts > 0 {
			check(fmt.Errorf("freshness round %d: %d writes not visible within %s", round+1, step.timeouts, freshWait))
		}
		progress("search: freshness round %d, %s: %s; load average %.1f", round+1, map[bool]string{true: "with the search write", false: "without it"}[searchOn], step, fx.sampleLoad())
		if searchOn {
			with = append(with, step.visible...)
		} else {
			off = append(off, step.visible...)
		}
	}
	fx.next = driver.next
	w, o := summarize(with), summarize(off)
	p50, p99 := ratioOf(w.p50, o.p50), ratioOf(w.p99, o.p99)
	return []row{{fmt.Sprintf("CDC freshness, commit to applied, with the search write (%d writes/s, %d rounds of %s each, alternating; %s listings)", int(searchLoadWrites), searchFreshPairs, d, fx.size),
		fmt.Sprintf("p50 %s, p99 %s (%d writes)", ms(w.p50), ms(w.p99), w.n),
		fmt.Sprintf("without it: p50 %s, p99 %s (%d writes)", ms(o.p50), ms(o.p99), o.n),
		fmt.Sprintf("%s p50, %s p99", times(p50), times(p99)),
		fmt.Sprintf("p50 and p99 <= %.2fx", searchFreshRatio), verdict(p50 <= searchFreshRatio && p99 <= searchFreshRatio)}}, nil
}
