package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/rpc"
)

// The reads suite measures the read side on one catalogue:
//
//   - GetListing on a cache hit, through the real Connect client over h2c
//     (POST, and HTTP GET as browsers may send it), against redis-benchmark
//     GETting a real cached listing at the same concurrency: the brief's
//     target (≥ 0.3×, p99 < 5 ms);
//   - the same calls answered from memory by a bare Connect handler: the
//     transport's own rate on this machine, the ceiling of the figure above;
//   - GetListing on a cache miss, against FerretDB's own find by _id
//     (readstore.FindRaw) at the same concurrency, in the same catalogue;
//   - SearchListings latency for a few query shapes, each cold (the page
//     cache orphaned first, as any listing change does) and warm.
//
// The catalogue is generated in Postgres before anything runs and loaded
// into Mongo by the operator's rebuild (insertMany of new documents), since
// the CDC's first-start full pass upserts one document at a time.

var searchListings = flag.Int("search-listings", 100_000, "listings in the reads suite's catalogue (SearchListings and the cache-miss path)")

// Targets from the brief.
const (
	hitMinRatio = 0.3
	hitMaxP99   = 5 * time.Millisecond
)

const (
	// hotListings are created through the app and then cached; the hit
	// figure cycles over them.
	hotListings = 64
	// readsFor caps each throughput figure of the suite.
	readsFor = 5 * time.Second
	// Search samples: cold calls until searchColdMax or, past
	// searchColdMin, until searchColdBudget is spent; then warm calls.
	searchColdMin    = 2
	searchColdMax    = 10
	searchColdBudget = 6 * time.Second
	searchWarmCalls  = 200
	searchWarmBudget = 2 * time.Second
	// searchAloneMax bounds the find sent straight to the read store.
	searchAloneMax = time.Minute
)

type readsFixture struct {
	env     *env
	srv     *httptest.Server
	post    swapmeetv1connect.ListingServiceClient // Connect's default: POST
	get     swapmeetv1connect.ListingServiceClient // connect.WithHTTPGet
	gets    *methodCounter                         // what get really sent
	hot     []string                               // created through the app, cached
	cold    []string                               // in the catalogue, never read yet; shuffled
	size    string                                 // catalogue listings, as sizeLabel puts it
	docSize int64                                  // bytes of one cached listing entry
}

func runReads(ctx context.Context, o options) ([]row, error) {
	if *searchListings < 1000 {
		return nil, fmt.Errorf("need -search-listings >= 1000, not %d", *searchListings)
	}
	return withEnv(ctx, func(e *env) ([]row, error) {
		fx, err := setUpReads(ctx, e, *searchListings)
		if err != nil {
			return nil, err
		}
		d := min(o.duration, readsFor)
		return measureAll(ctx, []figure{
			{"GetListing cache hit", func() ([]row, error) { return measureHits(ctx, fx, o.clients, d) }},
			{"GetListing cache miss", func() ([]row, error) { return measureMisses(ctx, fx, o.clients, d) }},
			{"SearchListings", func() ([]row, error) { return measureSearches(ctx, fx) }},
		})
	})
}

// setUpReads generates the catalogue, loads it with a rebuild, starts the
// CDC and the API, creates the hot listings through the app and caches
// them.
func setUpReads(ctx context.Context, e *env, n int) (*readsFixture, error) {
	fx := &readsFixture{env: e, size: sizeLabel(n)}
	took, err := seedCatalogue(ctx, e, n, "")
	if err != nil {
		return nil, err
	}
	progress("reads: catalogue: %d listings of %d sellers in Postgres in %s", n, catalogueSellers, took.Round(time.Millisecond))
	rb, err := rebuild(ctx, e, readstore.Listings, readstore.Users)
	if err != nil {
		return nil, err
	}
	progress("reads: catalogue loaded into Mongo by a rebuild in %s (listings at %.0f docs/s)",
		rb.total.Round(time.Millisecond), perSecond(rb.loaded[readstore.Listings], rb.loadTook[readstore.Listings]))

	if err := e.startCDC(ctx); err != nil { // the pointer exists: it streams the rebuild's slot
		return nil, err
	}
	api, err := e.startAPI()
	if err != nil {
		return nil, err
	}
	srv := api.Server
	fx.srv = srv
	fx.post = swapmeetv1connect.NewListingServiceClient(srv.Client(), srv.URL)
	fx.gets = &methodCounter{next: srv.Client().Transport}
	fx.get = swapmeetv1connect.NewListingServiceClient(&http.Client{Transport: fx.gets}, srv.URL, connect.WithHTTPGet())

	if err := createHotListings(ctx, fx, api.App); err != nil {
		return nil, err
	}
	rows, _ := e.PG.Query(ctx, `SELECT id::text FROM listings WHERE title LIKE '%, lot %'`)
	if fx.cold, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, fmt.Errorf("catalogue ids: %w", err)
	}
	rand.Shuffle(len(fx.cold), func(i, j int) { fx.cold[i], fx.cold[j] = fx.cold[j], fx.cold[i] })
	return fx, nil
}

// createHotListings creates listings through app.Commands, waits until the
// CDC has projected them (GetListing with the last consistency token),
// reads each once to fill the cache, and checks that Redis holds them.
func createHotListings(ctx context.Context, fx *readsFixture, a *app.App) error {
	var seller uuid.UUID
	if err := fx.env.PG.QueryRow(ctx, `SELECT id FROM users ORDER BY id LIMIT 1`).Scan(&seller); err != nil {
		return fmt.Errorf("a seller: %w", err)
	}
	start := time.Now()
	var token string
	for i := range hotListings {
		w, err := a.Commands.CreateListing(ctx, seller, app.ListingInput{
			Title:       fmt.Sprintf("Hot item %d: a vintage camera with its lens", i),
			Description: "A listing that swapmeet-bench creates through the app and then reads from the cache, over and over.",
			Category:    "cameras", Condition: "GOOD",
			Price:      &app.Money{Currency: "EUR", Minor: int64(1000 + i)},
			Attributes: map[string]string{"color": "black", "size": "M", "brand": "brand7"},
		})
		if err != nil {
			return fmt.Errorf("CreateListing: %w", err)
		}
		fx.hot = append(fx.hot, w.ID.String())
		token = w.ConsistencyToken
	}
	// The consistency wait is 2 s per call; the CDC may need longer to
	// project a burst of listings into a large collection.
	last := fx.hot[len(fx.hot)-1]
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := fx.post.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: last, ConsistencyToken: token}))
		if err == nil {
			break
		}
		if connect.CodeOf(err) != connect.CodeUnavailable || time.Now().After(deadline) {
			return fmt.Errorf("GetListing(%s) with the consistency token of the last CreateListing: %w", last, err)
		}
	}
	projected := time.Since(start)
	for _, id := range fx.hot {
		if _, err := fx.post.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id})); err != nil {
			return fmt.Errorf("warm GetListing(%s): %w", id, err)
		}
	}
	c := fx.env.Cache()
	for _, id := range fx.hot {
		b, err := fx.env.Redis.Get(ctx, c.ListingKey(id)).Bytes()
		if err != nil || len(b) < 17 || b[16] != 'V' {
			return fmt.Errorf("listing %s is not cached after a read (%q…, %v)", id, b[:min(len(b), 17)], err)
		}
		fx.docSize = int64(len(b))
	}
	progress("reads: %d listings created through the app and projected by the CDC in %s, then cached (%d bytes each)",
		hotListings, projected.Round(time.Millisecond), fx.docSize)
	return nil
}

// methodCounter counts the HTTP methods a client really sends.
type methodCounter struct {
	next      http.RoundTripper
	gets, all atomic.Int64
}

func (m *methodCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	m.all.Add(1)
	if req.Method == http.MethodGet {
		m.gets.Add(1)
	}
	return m.next.RoundTrip(req)
}

// measureHits: GetListing over the hot (cached) listings, POST and GET,
// each right after its own redis-benchmark GET of one of their cache
// entries: on a shared machine, adjacent runs see the same weather.
func measureHits(ctx context.Context, fx *readsFixture, clients int, d time.Duration) ([]row, error) {
	key := fx.env.Cache().ListingKey(fx.hot[0])
	var rows []row
	for _, v := range []struct {
		how    string
		client swapmeetv1connect.ListingServiceClient
	}{{"POST", fx.post}, {"HTTP GET", fx.get}} {
		progress("reads: reference: redis-benchmark GET of a cached listing (%d bytes), %d clients, ~%s", fx.docSize, clients, d)
		ref, err := redisBenchmarkGet(ctx, fx.env.RedisURL, key, clients, d)
		if err != nil {
			return rows, err
		}
		progress("reads: reference: %.0f GET/s, p50 %s, p99 %s", ref.rps, ms(ref.p50), ms(ref.p99))

		getsBefore := fx.gets.gets.Load()
		warm, res, err := load(ctx, "reads: GetListing cache hits over Connect "+v.how, clients, d, getHot(v.client, fx.hot))
		if err != nil {
			return rows, err
		}
		if sent := fx.gets.gets.Load() - getsBefore; v.client == fx.get && sent < int64(warm.calls+res.calls) {
			return rows, fmt.Errorf("the HTTP GET client sent only %d GET requests for %d calls", sent, warm.calls+res.calls)
		}
		ratio := res.rate() / ref.rps
		rows = append(rows, row{
			figure:    fmt.Sprintf("GetListing cache hit, Connect %s (%d clients)", v.how, clients),
			measured:  res.String(),
			reference: fmt.Sprintf("redis-benchmark GET %.0f/s (%d B value)", ref.rps, fx.docSize),
			ratio:     times(ratio),
			target:    fmt.Sprintf(">= %.1fx, p99 < %d ms", hitMinRatio, hitMaxP99.Milliseconds()),
			verdict:   verdict(ratio >= hitMinRatio && res.lat.p99 < hitMaxP99),
		})
		if v.client == fx.post {
			floor, err := measureConnectAlone(ctx, fx, clients, d, ref, res)
			if err != nil {
				return rows, fmt.Errorf("Connect alone: %w", err)
			}
			rows = append(rows, floor)
		}
	}
	return rows, nil
}

// measureConnectAlone serves GetListing from memory (the very responses
// the API gave for the hot listings) on a bare Connect handler over h2c,
// and hammers it with the same client and concurrency as the cache-hit
// figure. With no cache, read store, interceptor or authentication behind
// it, its rate is what this machine's Connect transport allows: a ceiling
// for the cache-hit figure, shown against the same redis-benchmark run.
func measureConnectAlone(ctx context.Context, fx *readsFixture, clients int, d time.Duration, ref redisResult, hit rateResult) (row, error) {
	canned := cannedListings{byID: map[string]*swapmeetv1.GetListingResponse{}}
	for _, id := range fx.hot {
		resp, err := fx.post.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id}))
		if err != nil {
			return row{}, fmt.Errorf("GetListing(%s): %w", id, err)
		}
		canned.byID[id] = resp.Msg
	}
	mux := http.NewServeMux()
	// Compression as the API does it.
	mux.Handle(swapmeetv1connect.NewListingServiceHandler(canned, connect.WithCompressMinBytes(rpc.CompressMinBytes)))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = fx.srv.Config.Protocols
	srv.Start()
	defer srv.Close()
	client := swapmeetv1connect.NewListingServiceClient(&http.Client{Transport: fx.srv.Client().Transport}, srv.URL)

	_, res, err := load(ctx, "reads: GetListing answered from memory by a bare Connect handler over POST", clients, d, getHot(client, fx.hot))
	if err != nil {
		return row{}, err
	}
	return row{
		figure:    fmt.Sprintf("Connect alone: GetListing from memory, POST (%d clients)", clients),
		measured:  fmt.Sprintf("%s (cache hit: %.0f%% of it)", res, 100*hit.rate()/res.rate()),
		reference: fmt.Sprintf("redis-benchmark GET %.0f/s (same run as above)", ref.rps),
		ratio:     times(res.rate() / ref.rps),
		target:    "ceiling of the row above",
		verdict:   verdictNone,
	}, nil
}

// cannedListings answers GetListing with a response it holds.
type cannedListings struct {
	swapmeetv1connect.UnimplementedListingServiceHandler
	byID map[string]*swapmeetv1.GetListingResponse
}

func (c cannedListings) GetListing(_ context.Context, req *connect.Request[swapmeetv1.GetListingRequest]) (*connect.Response[swapmeetv1.GetListingResponse], error) {
	resp, ok := c.byID[req.Msg.GetListingId()]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("not a hot listing"))
	}
	return connect.NewResponse(resp), nil
}

// getHot calls GetListing on the hot listings round robin, and checks
// that each answer is the listing asked for.
func getHot(client swapmeetv1connect.ListingServiceClient, hot []string) callFunc {
	var next atomic.Int64
	return func(ctx context.Context, _ int) (bool, error) {
		id := hot[int(next.Add(1))%len(hot)]
		resp, err := client.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id}))
		if err != nil {
			return false, fmt.Errorf("GetListing(%s): %w", id, err)
		}
		if got := resp.Msg.GetListing().GetListingId(); got != id {
			return false, fmt.Errorf("GetListing(%s) answered listing %q", id, got)
		}
		return true, nil
	}
}

// measureMisses: GetListing on catalogue listings that nobody has read,
// each id once, so every call misses Redis, reads FerretDB and fills the
// cache (the LSN compare-and-set). The reference finds other never-read
// ids straight in FerretDB, at the same concurrency, just before.
func measureMisses(ctx context.Context, fx *readsFixture, clients int, d time.Duration) ([]row, error) {
	half := len(fx.cold) / 2
	refIDs, missIDs := &pool[string]{items: fx.cold[:half]}, &pool[string]{items: fx.cold[half:]}

	progress("reads: reference: FerretDB find by _id (readstore.FindRaw), %d clients, %s, over %s listings", clients, d, fx.size)
	ref, err := hammer(ctx, clients, d, eachOnce(refIDs, func(ctx context.Context, _ int, id string) error {
		if _, err := fx.env.Reads.FindRaw(ctx, readstore.Listings, id); err != nil {
			return fmt.Errorf("FindRaw(%s): %w", id, err)
		}
		return nil
	}))
	if err != nil {
		return nil, err
	}
	progress("reads: reference: %d finds in %s: %s", ref.calls, ref.elapsed.Round(time.Millisecond), ref)

	progress("reads: GetListing cache misses (each listing read once, cold cache), %d clients, %s", clients, d)
	res, err := hammer(ctx, clients, d, eachOnce(missIDs, func(ctx context.Context, _ int, id string) error {
		if _, err := fx.post.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id})); err != nil {
			return fmt.Errorf("GetListing(%s): %w", id, err)
		}
		return nil
	}))
	if err != nil {
		return nil, err
	}
	progress("reads: %d GetListing misses in %s: %s, max %s", res.calls, res.elapsed.Round(time.Millisecond), res, ms(res.lat.max))
	// Every one of them must now be cached: the fill worked.
	c := fx.env.Cache()
	for _, id := range missIDs.items[:min(20, res.calls)] {
		if n, err := fx.env.Redis.Exists(ctx, c.ListingKey(id)).Result(); err != nil || n != 1 {
			return nil, fmt.Errorf("listing %s is not cached after a missed GetListing (%v)", id, err)
		}
	}
	measured := res.String()
	if res.exhausted || ref.exhausted {
		measured += " (ran out of unread listings early)"
	}
	return []row{{
		figure:    fmt.Sprintf("GetListing cache miss + fill (%d clients, %s listings)", clients, fx.size),
		measured:  measured,
		reference: fmt.Sprintf("FerretDB find by _id %.0f/s, p50 %s", ref.rate(), ms(ref.lat.p50)),
		ratio:     times(res.rate() / ref.rate()),
		target:    "none in brief",
		verdict:   verdictNone,
	}}, nil
}

// searchShape is one SearchListings query, the SQL that counts its
// matches in Postgres, and the find it becomes in the read store (for
// FerretDB's explain): the filter readstore builds, and the sort.
type searchShape struct {
	name   string
	req    *swapmeetv1.SearchListingsRequest
	count  string
	filter bson.D
	sort   bson.D
}

var (
	newestFirst  = bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}
	searchShapes = []searchShape{
		{
			name: "category audio, 50-150 EUR, newest",
			req: &swapmeetv1.SearchListingsRequest{Category: "audio",
				MinPrice: &swapmeetv1.Money{CurrencyCode: "EUR", AmountMinor: 5000},
				MaxPrice: &swapmeetv1.Money{CurrencyCode: "EUR", AmountMinor: 15000}},
			count: `SELECT count(*) FROM listings WHERE status = 'AVAILABLE' AND category = 'audio' AND price_currency = 'EUR' AND price_minor BETWEEN 5000 AND 15000`,
			filter: readstore.ListingFilter{Status: "AVAILABLE", Category: "audio", Currency: "EUR",
				MinPrice: new(int64(5000)), MaxPrice: new(int64(15000))}.Query(),
			sort: newestFirst,
		},
		{
			name:   `keyword "vintage camera", newest`,
			req:    &swapmeetv1.SearchListingsRequest{Query: "vintage camera"},
			count:  `SELECT count(*) FROM listings WHERE status = 'AVAILABLE' AND title || ' ' || description ~* '\mvintage\M' AND title || ' ' || description ~* '\mcamera\M'`,
			filter: readstore.ListingFilter{Status: "AVAILABLE", Keywords: []string{"vintage", "camera"}}.Query(),
			sort:   newestFirst,
		},
		{
			name:   "no filter, price ascending",
			req:    &swapmeetv1.SearchListingsRequest{Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC},
			count:  `SELECT count(*) FROM listings WHERE status = 'AVAILABLE'`,
			filter: readstore.ListingFilter{Status: "AVAILABLE"}.Query(),
			sort:   bson.D{{Key: "price.minor", Value: 1}, {Key: "_id", Value: -1}},
		},
	}
)

// measureSearches times the first page of each shape, one caller at a
// time:
//
//   - alone: the same find sent straight to the read store first, with a
//     server-side limit (maxTimeMS) of a minute instead of the API's
//     client-side 5 s deadline: what FerretDB itself needs for it;
//   - cold: through the API, with the listings page epoch bumped before
//     each call, as the CDC does after any listing change, so the page
//     cache misses and FerretDB answers;
//   - warm: the same call again, answered from the page cache.
//
// A cold call that runs into the read store's deadline (Unavailable) ends
// the shape's sampling, and then the page is never cached, so there is no
// warm either. FerretDB keeps working on a find whose client gave up (the
// driver sends no maxTimeMS with a find), so before going on the suite
// waits for about what that find had left, judged from the alone time.
func measureSearches(ctx context.Context, fx *readsFixture) ([]row, error) {
	var rows []row
	genKey := fx.env.Cache().PageEpochKey(readstore.Listings)
	for _, s := range searchShapes {
		var matches int64
		if err := fx.env.PG.QueryRow(ctx, s.count).Scan(&matches); err != nil {
			return rows, fmt.Errorf("count %s: %w", s.name, err)
		}
		plan := explainFind(ctx, fx.env.Reads, s.filter, s.sort)
		alone, err := findAlone(ctx, fx.env.Reads, s.filter, s.sort, searchAloneMax)
		if err != nil {
			return rows, fmt.Errorf("%s: the find alone: %w", s.name, err)
		}
		aloneText := ms(alone)
		if alone >= searchAloneMax {
			aloneText = "over " + ms(searchAloneMax)
		}
		progress("reads: SearchListings %s: %d match; FerretDB: %s; the find alone takes %s", s.name, matches, plan, aloneText)

		want := min(matches, 20)
		call := func() (time.Duration, error) {
			t0 := time.Now()
			resp, err := fx.post.SearchListings(ctx, connect.NewRequest(s.req))
			took := time.Since(t0)
			if err != nil {
				return took, err
			}
			if got := int64(len(resp.Msg.GetListings())); got != want {
				return took, fmt.Errorf("SearchListings(%s): a first page of %d listings; %d match in Postgres", s.name, got, matches)
			}
			return took, nil
		}

		var cold []time.Duration
		timedOut := false
		start := time.Now()
		for len(cold) < searchColdMax && (len(cold) < searchColdMin || time.Since(start) < searchColdBudget) {
			if err := fx.env.Redis.Incr(ctx, genKey).Err(); err != nil {
				return rows, fmt.Errorf("bump the listings page epoch: %w", err)
			}
			took, err := call()
			if connect.CodeOf(err) == connect.CodeUnavailable && ctx.Err() == nil {
				// The read store's deadline: a finding, not a bug.
				timedOut = true
				cold = append(cold, took)
				left := time.Duration(1.2*float64(alone-took)) + time.Second
				progress("reads: SearchListings %s: Unavailable after %s; waiting %s for FerretDB to finish the abandoned find",
					s.name, ms(took), left.Round(100*time.Millisecond))
				if !sleepCtx(ctx, left) {
					return rows, context.Cause(ctx)
				}
				break
			}
			if err != nil {
				return rows, err
			}
			cold = append(cold, took)
		}
		c := summarize(cold)
		var measured string
		switch {
		case timedOut && c.n == 1:
			measured = fmt.Sprintf("cold: Unavailable after %s (read store deadline); never cached, so no warm", ms(c.max))
		case timedOut:
			measured = fmt.Sprintf("cold: %d ok, then Unavailable after %s (read store deadline)", c.n-1, ms(c.max))
		default:
			measured = fmt.Sprintf("cold p50 %s, max %s (n=%d)", ms(c.p50), ms(c.max), c.n)
		}
		progress("reads: SearchListings %s: %s", s.name, measured)

		if !timedOut {
			// The last cold call filled the page: from here on, hits.
			var warm []time.Duration
			start := time.Now()
			for len(warm) < searchWarmCalls && time.Since(start) < searchWarmBudget {
				took, err := call()
				if err != nil {
					return rows, fmt.Errorf("warm: %w", err)
				}
				warm = append(warm, took)
			}
			w := summarize(warm)
			measured += fmt.Sprintf("; warm p50 %s, p99 %s (n=%d)", ms(w.p50), ms(w.p99), w.n)
			progress("reads: SearchListings %s: warm p50 %s, p99 %s (n=%d)", s.name, ms(w.p50), ms(w.p99), w.n)
		}
		rows = append(rows, row{
			figure:    fmt.Sprintf("SearchListings, %s listings: %s", fx.size, s.name),
			measured:  measured,
			reference: fmt.Sprintf("find alone %s (%d match; %s)", aloneText, matches, plan),
			target:    "none in brief",
			verdict:   verdictNone,
		})
	}
	return rows, nil
}

// findAlone runs a search page's find straight on the read store with a
// server-side time limit, and returns how long it took (limit, if the
// server stopped it there).
func findAlone(ctx context.Context, s *readstore.Model, filter, sort bson.D, limit time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, limit+10*time.Second)
	defer cancel()
	cmd := bson.D{
		{Key: "find", Value: s.Physical(readstore.Listings)}, {Key: "filter", Value: filter},
		{Key: "sort", Value: sort}, {Key: "limit", Value: 21}, {Key: "singleBatch", Value: true},
		{Key: "maxTimeMS", Value: limit.Milliseconds()},
	}
	t0 := time.Now()
	err := s.DB().RunCommand(ctx, cmd).Err()
	took := time.Since(t0)
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == 50 { // MaxTimeMSExpired
		return limit, nil
	}
	return took, err
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

var sqlFieldRE = regexp.MustCompile(`-> '([^']+)'::text`)

// explainFind asks the read store how it runs a search page's find, and
// says it in a few words: what reaches Postgres as SQL, and whether the
// sort and the limit do. FerretDB 1.24 reports its pushdowns in explain;
// a server that does not (MongoDB) gets "explain: n/a".
func explainFind(ctx context.Context, s *readstore.Model, filter, sort bson.D) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out struct {
		FilterPushdown *bool    `bson:"filterPushdown"`
		SortPushdown   *bool    `bson:"sortPushdown"`
		LimitPushdown  *bool    `bson:"limitPushdown"`
		QueryPlanner   bson.Raw `bson:"queryPlanner"`
	}
	cmd := bson.D{{Key: "explain", Value: bson.D{
		{Key: "find", Value: s.Physical(readstore.Listings)}, {Key: "filter", Value: filter},
		{Key: "sort", Value: sort}, {Key: "limit", Value: 21},
	}}}
	if err := s.DB().RunCommand(ctx, cmd).Decode(&out); err != nil || out.SortPushdown == nil || out.LimitPushdown == nil {
		return "explain: n/a"
	}
	node, fields := "?", []string{}
	if plan, err := out.QueryPlanner.LookupErr("Plan"); err == nil {
		if doc, ok := plan.DocumentOK(); ok {
			if v, ok := doc.Lookup("Node Type").StringValueOK(); ok {
				node = v
			}
			for _, k := range []string{"Filter", "Recheck Cond", "Index Cond"} {
				if v, ok := doc.Lookup(k).StringValueOK(); ok {
					for _, m := range sqlFieldRE.FindAllStringSubmatch(v, -1) {
						if !slices.Contains(fields, m[1]) {
							fields = append(fields, m[1])
						}
					}
				}
			}
		}
	}
	where := "no WHERE"
	if len(fields) > 0 {
		where = "WHERE " + strings.Join(fields, ", ")
	}
	in := func(pushed bool) string {
		if pushed {
			return "in SQL"
		}
		return "in FerretDB"
	}
	return fmt.Sprintf("SQL %s %s; sort %s, limit %s", node, where, in(*out.SortPushdown), in(*out.LimitPushdown))
}
