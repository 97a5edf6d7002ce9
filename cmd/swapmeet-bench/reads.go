package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/consistency"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// The reads suite measures the read side of a `swapmeet serve` process,
// built from this tree and run on the suite's own share of the services
// with the CDC running, on one generated catalogue:
//
//   - cold SearchListings latency for a few query shapes (the page cache
//     orphaned before each call, as any listing change does), with the Go
//     Connect client, against the same find sent straight to FerretDB.
//     It runs first: a shape that runs into the read store's deadline
//     when cold is left out of the warm figure below;
//   - GetListing on a cache hit, loaded by h2load (nghttp2's C HTTP/2
//     load generator; h2c with prior knowledge, one stream per
//     connection) as Connect GET requests for hotListings distinct cached
//     listings, in JSON and in binary proto. h2load is a C client, as the
//     references are, so the client is not a Go program that shares the
//     machine's two cores with the server and so measures itself too.
//     Two references at the same connection count: the Connect ceiling,
//     h2load POSTing grpc.health.v1.Health/Check (a trivial RPC of the
//     same process, through the same HTTP server, though not the API's
//     interceptor: grpchealth's handler has none), and redis-benchmark
//     GETting one of the listings' cache entries. The target: at
//     least 0.8x the ceiling and 0.3x redis-benchmark, p99 < 5 ms;
//   - warm SearchListings pages of those shapes, each requested once
//     first, by h2load as Connect GET in JSON;
//   - these figures run in readRounds alternating rounds (redis-benchmark,
//     ceiling, JSON and proto in turns, search) and the table shows each
//     one's medians, since the machine's speed varies from minute to
//     minute;
//   - GetListing cache hits once more, on a second serve process with its
//     in-process near cache off: what Redis alone gives;
//   - GetListing on a cache miss, with the Go Connect client, against
//     FerretDB's own find by _id (readstore.FindRaw) at the same
//     concurrency, in the same catalogue: both run in this process.
//
// Before each h2load run, one of its requests is sent with net/http and
// its answer checked (the listing asked for; a page of the size that
// Postgres counts); h2load's own count of failed and non-2xx answers must
// be zero. h2load sends no Accept-Encoding, so no answer is compressed.
// The serve process logs at info, not each request; reads count against
// no per-client limit (only writes do).
//
// The catalogue is generated in Postgres before anything runs and loaded
// into Mongo by the operator's rebuild (insertMany of new documents), since
// the CDC's first-start full pass upserts one document at a time.

var searchListings = flag.Int("search-listings", 100_000, "listings in the reads suite's catalogue (SearchListings and the cache-miss path)")

// The targets.
const (
	hitMinCeiling = 0.8 // of the Connect ceiling
	hitMinRatio   = 0.3 // of redis-benchmark GET
	hitMaxP99     = 5 * time.Millisecond
)

const (
	// hotListings are catalogue listings read once, and so cached; the
	// hit figures cycle over them.
	hotListings = 1024
	// readRounds of the hit figures and their references.
	readRounds = 3
	// readsFor caps each throughput figure of the suite.
	readsFor = 5 * time.Second
	// Cold search samples: calls until searchColdMax or, past
	// searchColdMin, until searchColdBudget is spent.
	searchColdMin    = 2
	searchColdMax    = 10
	searchColdBudget = 6 * time.Second
	// searchAloneMax bounds the find sent straight to the read store.
	searchAloneMax = time.Minute
	// nearCacheOff is the serve setting that turns the in-process cache
	// of listings off.
	nearCacheOff = "SWAPMEET_NEAR_CACHE_ENTRIES=0"
	// readStoreDeadline is how long the API waits for the read store
	// (readstore.Model's default OpTimeout).
	readStoreDeadline = 5 * time.Second
)

type readsFixture struct {
	env     *env
	bin     string                                 // swapmeet, for a second serve process
	base    string                                 // the serve process's URL
	client  swapmeetv1connect.ListingServiceClient // Connect (POST) over h2c, to it
	check   *http.Client                           // HTTP/1.1, to check single answers
	dir     string                                 // h2load's files
	hot     []string                               // in the catalogue, read once: cached
	cold    []string                               // in the catalogue, never read yet; shuffled
	changed string                                 // in the catalogue, changed to orphan the search pages
	size    string                                 // catalogue listings, as sizeLabel puts it
	docSize int64                                  // bytes of the first hot listing's cache entry
	// tooSlow are the search shapes whose cold page ran into the read
	// store's deadline.
	tooSlow []string
}

func runReads(ctx context.Context, o options) ([]row, error) {
	if *searchListings < 2*hotListings {
		return nil, fmt.Errorf("need -search-listings >= %d, not %d", 2*hotListings, *searchListings)
	}
	return withEnv(ctx, func(e *env) ([]row, error) {
		fx, err := setUpReads(ctx, e, *searchListings)
		if err != nil {
			return nil, err
		}
		d := min(o.duration, readsFor)
		// The cold searches first: they learn which shapes' pages the
		// read store cannot give within its deadline, which the warm
		// figure then leaves out (an abandoned find goes on in FerretDB,
		// and would run under the figures).
		return measureAll(ctx, []figure{
			{"SearchListings", func() ([]row, error) { return measureSearches(ctx, fx) }},
			{"GetListing cache hit", func() ([]row, error) { return measureHits(ctx, fx, o.clients, d) }},
			{"GetListing cache miss", func() ([]row, error) { return measureMisses(ctx, fx, o.clients, d) }},
		})
	})
}

// setUpReads generates the catalogue, loads it with a rebuild, starts the
// CDC and a serve process, and caches the hot listings.
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
	if fx.bin, err = buildSwapmeet(ctx, e); err != nil {
		return nil, err
	}
	if _, fx.base, err = startServeProcess(ctx, e, fx.bin); err != nil {
		return nil, err
	}
	fx.client = swapmeetv1connect.NewListingServiceClient(h2cClient(), fx.base)
	fx.check = &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	if fx.dir, err = os.MkdirTemp("", "swapmeet-bench-h2load-"); err != nil {
		return nil, err
	}
	e.onClose(func() error { return os.RemoveAll(fx.dir) })

	rows, _ := e.PG.Query(ctx, `SELECT id::text FROM listings WHERE title LIKE '%, lot %'`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("catalogue ids: %w", err)
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	fx.hot, fx.changed, fx.cold = ids[:hotListings], ids[hotListings], ids[hotListings+1:]
	// serve loads the projections pointer before it serves: the rebuilt
	// catalogue is found at once.
	if err := checkGetListing(ctx, fx.check, fx.base, fx.hot[0], false); err != nil {
		return nil, fmt.Errorf("the first query of a new serve process: %w", err)
	}
	if err := cacheHot(ctx, fx); err != nil {
		return nil, err
	}
	return fx, nil
}

// h2cClient speaks HTTP/2 without TLS (prior knowledge), as h2load does.
func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p}}
}

// cacheHot reads each hot listing once with a Connect GET, in JSON and
// then in proto, checking each answer, and then checks that Redis holds
// each of them.
func cacheHot(ctx context.Context, fx *readsFixture) error {
	start := time.Now()
	for _, binary := range []bool{false, true} {
		ids := &pool[string]{items: fx.hot}
		if _, err := hammer(ctx, 8, 5*time.Minute, eachOnce(ids, func(ctx context.Context, _ int, id string) error {
			return checkGetListing(ctx, fx.check, fx.base, id, binary)
		})); err != nil {
			return fmt.Errorf("warm GetListing: %w", err)
		}
	}
	c := fx.env.Cache()
	var largest int64
	for i, id := range fx.hot {
		b, err := fx.env.Redis.Get(ctx, c.ListingKey(id)).Bytes()
		if err != nil || len(b) < 17 || b[16] != 'V' {
			return fmt.Errorf("listing %s is not cached after a read (%q…, %v)", id, b[:min(len(b), 17)], err)
		}
		if i == 0 { // the one redis-benchmark GETs
			fx.docSize = int64(len(b))
		}
		largest = max(largest, int64(len(b)))
	}
	progress("reads: %d catalogue listings read with Connect GET (JSON, then proto) and cached in %s (entries of up to %d bytes)",
		len(fx.hot), time.Since(start).Round(time.Millisecond), largest)
	return nil
}

// connectGetURL is the URL of a Connect unary GET request of msg to
// procedure (https://connectrpc.com/docs/protocol#unary-get-request): in
// JSON, or in binary proto as unpadded base64url.
func connectGetURL(base, procedure string, msg proto.Message, binary bool) (string, error) {
	q := url.Values{"connect": {"v1"}}
	if binary {
		b, err := proto.Marshal(msg)
		if err != nil {
			return "", err
		}
		q.Set("encoding", "proto")
		q.Set("base64", "1")
		q.Set("message", base64.RawURLEncoding.EncodeToString(b))
	} else {
		b, err := protojson.Marshal(msg)
		if err != nil {
			return "", err
		}
		q.Set("encoding", "json")
		q.Set("message", string(b))
	}
	return base + procedure + "?" + q.Encode(), nil
}

func getListingURL(base, id string, binary bool) string {
	u, err := connectGetURL(base, swapmeetv1connect.ListingServiceGetListingProcedure, &swapmeetv1.GetListingRequest{ListingId: id}, binary)
	if err != nil {
		panic(err) // a string field always marshals
	}
	return u
}

func getListingURLs(base string, ids []string, binary bool) []string {
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = getListingURL(base, id, binary)
	}
	return urls
}

// fetch sends one request (a POST of body as JSON if body is set, a GET
// otherwise) and returns the answer's body, or an error unless it is a
// 200 of the content type want.
func fetch(ctx context.Context, c *http.Client, u string, body []byte, want string) ([]byte, error) {
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != want {
		return b, fmt.Errorf("%s %s: %s, %s: %.300s", method, u, resp.Status, ct, b)
	}
	return b, nil
}

// checkGetListing GETs one listing as h2load will, and checks that the
// answer is that listing.
func checkGetListing(ctx context.Context, c *http.Client, base, id string, binary bool) error {
	ct, decode := "application/json", protojson.Unmarshal
	if binary {
		ct, decode = "application/proto", proto.Unmarshal
	}
	b, err := fetch(ctx, c, getListingURL(base, id, binary), nil, ct)
	if err != nil {
		return err
	}
	var resp swapmeetv1.GetListingResponse
	if err := decode(b, &resp); err != nil {
		return fmt.Errorf("GetListing(%s): %w", id, err)
	}
	if got := resp.GetListing().GetListingId(); got != id || !bytes.Contains(b, []byte(id)) {
		return fmt.Errorf("GetListing(%s) answered listing %q", id, got)
	}
	return nil
}

// healthPath is the Connect ceiling's RPC: grpc.health.v1.Health/Check,
// which serve registers next to its services, with an empty request.
const healthPath = "/grpc.health.v1.Health/Check"

var healthBody = []byte("{}")

func checkHealth(ctx context.Context, c *http.Client, base string) error {
	b, err := fetch(ctx, c, base+healthPath, healthBody, "application/json")
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte(`"SERVING_STATUS_SERVING"`)) {
		return fmt.Errorf("Health/Check answered %.300s", b)
	}
	return nil
}

// warmSearch is a search shape whose first page h2load requests.
type warmSearch struct {
	shape   searchShape
	url     string
	matches int64
}

// primeSearches requests each shape's first page once with a Connect
// GET, checking it against Postgres's count, so that the page is cached.
// A shape whose page the read store cannot give within its deadline
// (Unavailable) is named in skipped.
func primeSearches(ctx context.Context, fx *readsFixture, shapes []warmSearch) (ok []warmSearch, skipped []string, err error) {
	for _, w := range shapes {
		b, err := fetch(ctx, fx.check, w.url, nil, "application/json")
		if err != nil {
			if strings.Contains(err.Error(), "503 Service Unavailable") {
				skipped = append(skipped, w.shape.name)
				continue
			}
			return nil, nil, fmt.Errorf("SearchListings %s: %w", w.shape.name, err)
		}
		var resp swapmeetv1.SearchListingsResponse
		if err := protojson.Unmarshal(b, &resp); err != nil {
			return nil, nil, fmt.Errorf("SearchListings %s: %w", w.shape.name, err)
		}
		if got, want := int64(len(resp.GetListings())), min(w.matches, 20); got != want {
			return nil, nil, fmt.Errorf("SearchListings(%s): a first page of %d listings; %d match in Postgres", w.shape.name, got, w.matches)
		}
		ok = append(ok, w)
	}
	return ok, skipped, nil
}

// readRound is one round of the hit figures and their references.
type readRound struct {
	redis                        redisResult
	ceiling, json, proto, search h2loadResult
}

// measureHits runs readRounds rounds of: redis-benchmark GET of a hot
// listing's cache entry, the Connect ceiling, GetListing cache hits in
// JSON and in proto (which first, in turns), and warm search pages; each
// right after the other, so that the ratios compare runs that saw the
// same weather. Then GetListing cache hits once on a serve process
// without the near cache.
func measureHits(ctx context.Context, fx *readsFixture, clients int, d time.Duration) ([]row, error) {
	key := fx.env.Cache().ListingKey(fx.hot[0])
	jsonURLs, protoURLs := getListingURLs(fx.base, fx.hot, false), getListingURLs(fx.base, fx.hot, true)
	var searches []warmSearch
	var skipped []string
	for _, name := range fx.tooSlow {
		skipped = append(skipped, name+" (Unavailable when cold)")
	}
	for _, s := range searchShapes {
		if slices.Contains(fx.tooSlow, s.name) {
			continue
		}
		var w warmSearch
		if err := fx.env.PG.QueryRow(ctx, s.count).Scan(&w.matches); err != nil {
			return nil, fmt.Errorf("count %s: %w", s.name, err)
		}
		u, err := connectGetURL(fx.base, swapmeetv1connect.ListingServiceSearchListingsProcedure, s.req, false)
		if err != nil {
			return nil, err
		}
		w.shape, w.url = s, u
		searches = append(searches, w)
	}
	run := func(what string, r h2loadRun) (h2loadResult, error) {
		r.clients, r.d = clients, d
		progress("reads: h2load: %s, %d connections, %s after a %s warm-up", what, clients, d, warmupFor(d))
		res, err := runH2load(ctx, fx.dir, r)
		if err != nil {
			return res, fmt.Errorf("%s: %w", what, err)
		}
		progress("reads: h2load: %s: %s, max %s (%d requests)", what, res, ms(res.lat.max), res.lat.n)
		return res, nil
	}

	var rounds []readRound
	for i := range readRounds {
		var r readRound
		var err error
		progress("reads: round %d of %d", i+1, readRounds)
		progress("reads: reference: redis-benchmark GET of a cached listing (%d bytes), %d clients, ~%s", fx.docSize, clients, d)
		if r.redis, err = redisBenchmarkGet(ctx, fx.env.RedisURL, key, clients, d); err != nil {
			return nil, err
		}
		progress("reads: reference: %.0f GET/s, p50 %s, p99 %s", r.redis.rps, ms(r.redis.p50), ms(r.redis.p99))

		if err := checkHealth(ctx, fx.check, fx.base); err != nil {
			return nil, err
		}
		if r.ceiling, err = run("Connect ceiling, Health/Check POST JSON", h2loadRun{urls: []string{fx.base + healthPath}, body: healthBody}); err != nil {
			return nil, err
		}

		encodings := []struct {
			binary bool
			urls   []string
			dst    *h2loadResult
		}{{false, jsonURLs, &r.json}, {true, protoURLs, &r.proto}}
		if i%2 == 1 {
			slices.Reverse(encodings) // neither always runs first
		}
		for _, v := range encodings {
			id := fx.hot[rand.IntN(len(fx.hot))]
			if err := checkGetListing(ctx, fx.check, fx.base, id, v.binary); err != nil {
				return nil, err
			}
			if *v.dst, err = run("GetListing cache hits, GET "+encodingName(v.binary), h2loadRun{urls: v.urls}); err != nil {
				return nil, err
			}
		}

		// A cached page lives a minute (PageTTL), and a prime that hits
		// does not extend it: a page first cached a round ago could
		// expire in the middle of a run. Each round orphans the pages
		// with a listing change and caches them afresh.
		if err := fx.changeAListing(ctx); err != nil {
			return nil, err
		}
		primed, skip, err := primeSearches(ctx, fx, searches)
		if err != nil {
			return nil, err
		}
		if len(skip) > 0 {
			// Fast enough in the cold figure, not now: the machine is
			// busier. The shape is left out from here on, and FerretDB
			// gets the read store's deadline again to finish the find
			// it was left with.
			progress("reads: SearchListings warm pages: Unavailable when first requested, left out: %s", strings.Join(skip, "; "))
			for _, name := range skip {
				skipped = append(skipped, fmt.Sprintf("%s (Unavailable when first requested in round %d)", name, i+1))
			}
			searches = slices.DeleteFunc(searches, func(w warmSearch) bool { return slices.Contains(skip, w.shape.name) })
			if !sleepCtx(ctx, readStoreDeadline) {
				return nil, context.Cause(ctx)
			}
		}
		if len(primed) > 0 {
			urls := make([]string, len(primed))
			for i, w := range primed {
				urls[i] = w.url
			}
			if r.search, err = run(fmt.Sprintf("SearchListings warm pages of %d shapes, GET JSON", len(primed)), h2loadRun{urls: urls}); err != nil {
				return nil, err
			}
		}
		rounds = append(rounds, r)
	}

	near, err := measureWithoutNearCache(ctx, fx, run)
	if err != nil {
		return nil, fmt.Errorf("near cache off: %w", err)
	}
	return hitRows(fx, clients, rounds, near, len(searches), skipped), nil
}

// measureWithoutNearCache starts a second serve process with its
// in-process near cache off, and measures GetListing cache hits in JSON
// on it once: what Redis alone gives.
func measureWithoutNearCache(ctx context.Context, fx *readsFixture, run func(string, h2loadRun) (h2loadResult, error)) (h2loadResult, error) {
	p, base, err := startServeProcess(ctx, fx.env, fx.bin, nearCacheOff)
	if err != nil {
		return h2loadResult{}, err
	}
	defer func() {
		if err := p.stop(15 * time.Second); err != nil {
			progress("serve process: %v", err)
		}
	}()
	if err := checkGetListing(ctx, fx.check, base, fx.hot[0], false); err != nil {
		return h2loadResult{}, fmt.Errorf("the first query of the second serve process: %w", err)
	}
	return run("GetListing cache hits, GET JSON, near cache off ("+nearCacheOff+")", h2loadRun{urls: getListingURLs(base, fx.hot, false)})
}

func encodingName(binary bool) string {
	if binary {
		return "proto"
	}
	return "JSON"
}

// hitRows reads the rounds' medians. A ratio is the median of the
// rounds' ratios, each between runs of the same round.
func hitRows(fx *readsFixture, clients int, rounds []readRound, near h2loadResult, shapes int, skipped []string) []row {
	n := len(rounds)
	field := func(f func(readRound) h2loadResult) h2loadResult {
		return h2loadResult{
			rps: median(rounds, func(r readRound) float64 { return f(r).rps }),
			lat: latencies{
				p50: median(rounds, func(r readRound) time.Duration { return f(r).lat.p50 }),
				p99: median(rounds, func(r readRound) time.Duration { return f(r).lat.p99 }),
			},
		}
	}
	ceiling := field(func(r readRound) h2loadResult { return r.ceiling })
	redis := redisResult{
		rps: median(rounds, func(r readRound) float64 { return r.redis.rps }),
		p50: median(rounds, func(r readRound) time.Duration { return r.redis.p50 }),
		p99: median(rounds, func(r readRound) time.Duration { return r.redis.p99 }),
	}
	redisRef := fmt.Sprintf("redis-benchmark GET %.0f/s, p50 %s, p99 %s (%d B value)", redis.rps, ms(redis.p50), ms(redis.p99), fx.docSize)
	bothRef := fmt.Sprintf("ceiling %.0f/s; redis-benchmark GET %.0f/s", ceiling.rps, redis.rps)
	ratios := func(f func(readRound) h2loadResult) (toCeiling, toRedis float64) {
		return median(rounds, func(r readRound) float64 { return f(r).rps / r.ceiling.rps }),
			median(rounds, func(r readRound) float64 { return f(r).rps / r.redis.rps })
	}
	each := fmt.Sprintf("h2load, %d conns, median of %d rounds", clients, n)

	rows := []row{{
		figure:    fmt.Sprintf("Connect ceiling: Health/Check, POST JSON (%s)", each),
		measured:  ceiling.String(),
		reference: redisRef,
		ratio:     times(median(rounds, func(r readRound) float64 { return r.ceiling.rps / r.redis.rps })) + " redis",
		target:    "- (ceiling of the rows below)",
		verdict:   verdictNone,
	}}
	for _, v := range []struct {
		name string
		f    func(readRound) h2loadResult
	}{
		{"GET JSON", func(r readRound) h2loadResult { return r.json }},
		{"GET proto", func(r readRound) h2loadResult { return r.proto }},
	} {
		res := field(v.f)
		toCeiling, toRedis := ratios(v.f)
		rows = append(rows, row{
			figure:    fmt.Sprintf("GetListing cache hit, Connect %s (%s, %d listings)", v.name, each, len(fx.hot)),
			measured:  res.String(),
			reference: bothRef,
			ratio:     fmt.Sprintf("%s ceiling, %s redis", times(toCeiling), times(toRedis)),
			target:    fmt.Sprintf(">= %.1fx ceiling, >= %.1fx redis, p99 < %d ms", hitMinCeiling, hitMinRatio, hitMaxP99.Milliseconds()),
			verdict:   verdict(toCeiling >= hitMinCeiling && toRedis >= hitMinRatio && res.lat.p99 < hitMaxP99),
		})
	}
	rows = append(rows, row{
		figure:    fmt.Sprintf("GetListing hit, Redis only (near cache off), Connect GET JSON (h2load, %d conns, 1 run after the rounds)", clients),
		measured:  near.String(),
		reference: bothRef + " (medians)",
		ratio:     fmt.Sprintf("%s ceiling, %s redis", times(near.rps/ceiling.rps), times(near.rps/redis.rps)),
		target:    "- (the JSON row above, without the near cache)",
		verdict:   verdictNone,
	})
	search := row{
		figure:    fmt.Sprintf("SearchListings warm page, Connect GET JSON (%s, %d shapes, %s listings)", each, shapes, fx.size),
		reference: bothRef,
		target:    "none set",
		verdict:   verdictNone,
	}
	if shapes == 0 {
		search.measured, search.verdict = "not measured: no shape's page could be cached", verdictNotMeasured
	} else {
		res := field(func(r readRound) h2loadResult { return r.search })
		toCeiling, toRedis := ratios(func(r readRound) h2loadResult { return r.search })
		search.measured = res.String()
		search.ratio = fmt.Sprintf("%s ceiling, %s redis", times(toCeiling), times(toRedis))
	}
	if len(skipped) > 0 {
		search.measured += fmt.Sprintf(" (left out: %s)", strings.Join(skipped, "; "))
	}
	return append(rows, search)
}

// median of f over xs: the middle one, or the lower of the two middle
// ones.
func median[T any, V cmp.Ordered](xs []T, f func(T) V) V {
	vs := make([]V, len(xs))
	for i, x := range xs {
		vs[i] = f(x)
	}
	slices.Sort(vs)
	var zero V
	if len(vs) == 0 {
		return zero
	}
	return vs[(len(vs)-1)/2]
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
		if _, err := fx.client.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id})); err != nil {
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
		target:    "none set",
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

// measureSearches times the first page of each shape, cold, one caller
// at a time, with the Go Connect client (warm pages are h2load's, in
// measureHits):
//
//   - alone: the same find sent straight to the read store first, with a
//     server-side limit (maxTimeMS) of a minute instead of the API's
//     client-side 5 s deadline: what FerretDB itself needs for it;
//   - cold: through the API, after a listing change that the serve
//     process has taken in (changeAListing: the CDC bumps the listings
//     page epoch), so neither Redis nor the near cache has the page and
//     FerretDB answers.
//
// A cold call that runs into the read store's deadline (Unavailable) ends
// the shape's sampling. FerretDB keeps working on a find whose client gave up (the
// driver sends no maxTimeMS with a find), so before going on the suite
// waits for about what that find had left, judged from the alone time.
func measureSearches(ctx context.Context, fx *readsFixture) ([]row, error) {
	var rows []row
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
			resp, err := fx.client.SearchListings(ctx, connect.NewRequest(s.req))
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
			if err := fx.changeAListing(ctx); err != nil {
				return rows, err
			}
			took, err := call()
			if connect.CodeOf(err) == connect.CodeUnavailable && ctx.Err() == nil {
				// The read store's deadline: a finding, not a bug.
				timedOut = true
				fx.tooSlow = append(fx.tooSlow, s.name)
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
			measured = fmt.Sprintf("cold: Unavailable after %s (read store deadline)", ms(c.max))
		case timedOut:
			measured = fmt.Sprintf("cold: %d ok, then Unavailable after %s (read store deadline)", c.n-1, ms(c.max))
		default:
			measured = fmt.Sprintf("cold p50 %s, max %s (n=%d)", ms(c.p50), ms(c.max), c.n)
		}
		progress("reads: SearchListings %s: %s", s.name, measured)

		rows = append(rows, row{
			figure:    fmt.Sprintf("SearchListings cold, %s listings: %s", fx.size, s.name),
			measured:  measured,
			reference: fmt.Sprintf("find alone %s (%d match; %s)", aloneText, matches, plan),
			target:    "none set",
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

// changeAListing changes a catalogue listing in Postgres and waits until
// the serve process has taken the change in: the CDC rewrites the
// document, bumps the listings page epoch and announces both, as for any
// listing write, so every cached search page, in Redis and in the serve
// process's near cache, is orphaned.
func (fx *readsFixture) changeAListing(ctx context.Context) error {
	if _, err := fx.env.PG.Exec(ctx, `UPDATE listings SET version = version + 1, updated_at = now() WHERE id = $1`, fx.changed); err != nil {
		return fmt.Errorf("change a listing: %w", err)
	}
	lsn, err := sqlc.New(fx.env.PG).CurrentLSN(ctx)
	if err != nil {
		return err
	}
	req := &swapmeetv1.GetListingRequest{ListingId: fx.changed, ConsistencyToken: consistency.Token(uint64(lsn))}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := fx.client.GetListing(ctx, connect.NewRequest(req))
		if err == nil {
			return nil
		}
		if connect.CodeOf(err) != connect.CodeUnavailable || time.Now().After(deadline) {
			return fmt.Errorf("GetListing with the token of a listing change: %w", err)
		}
	}
}
