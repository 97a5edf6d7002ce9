package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// The reads suite, on a catalogue of -search-listings listings with the
// CDC running and a `swapmeet serve` process: cold SearchListings pages
// against FerretDB's own find; GetListing cache hits (Connect GET, JSON
// and proto) and warm search pages under h2load, against the Connect
// ceiling (Health/Check) and redis-benchmark GET, in alternating rounds
// (medians); hits without the near cache; misses against FerretDB's find.

const (
	hitMinCeiling = 0.8 // of the Connect ceiling
	hitMinRatio   = 0.3 // of redis-benchmark GET
	hitMaxP99     = 5 * time.Millisecond
	hotListings   = 1024
	readRounds    = 3
	readsFor      = 5 * time.Second // caps each throughput figure
	nearCacheOff  = "SWAPMEET_NEAR_CACHE_ENTRIES=0"
	healthPath    = "/grpc.health.v1.Health/Check"
)

type readsFixture struct {
	e       *env
	bin     string
	api     *api
	client  swapmeetv1connect.ListingServiceClient // Connect POST over h2c
	check   *http.Client                           // HTTP/1.1, to check single answers
	dir     string                                 // h2load's files
	hot     []string                               // read once: cached
	cold    []string                               // never read yet; shuffled
	changed string                                 // changed to orphan the search pages
	size    string
	docSize int // bytes of the first hot listing's cache entry
}

func runReads(ctx context.Context, o options) ([]row, error) {
	if o.searchListings < 2*hotListings {
		return nil, fmt.Errorf("need -search-listings >= %d, not %d", 2*hotListings, o.searchListings)
	}
	return withEnv(ctx, func(e *env) (rows []row, err error) {
		defer recovered(&err)
		fx := setUpReads(ctx, e, o.searchListings)
		d := min(o.duration, readsFor)
		return measureAll(ctx, []figure{
			{"GetListing cache hit", func() ([]row, error) { return fx.measureHits(ctx, o.clients, d) }},
			{"GetListing cache miss", func() ([]row, error) { return fx.measureMisses(ctx, o.clients, d) }},
		})
	})
}

// setUpReads loads the catalogue, starts the CDC and a serve process, and caches the hot listings.
func setUpReads(ctx context.Context, e *env, n int) *readsFixture {
	fx := &readsFixture{e: e, size: sizeLabel(n), check: &http.Client{Timeout: 30 * time.Second}}
	seedCatalogue(ctx, e, n, 500, "")
	loadCatalogue(ctx, e, n)
	e.startCDC(ctx)
	fx.bin = swapmeetBinary(ctx, e)
	fx.api = startServeProcess(ctx, e, fx.bin)
	fx.client = swapmeetv1connect.NewListingServiceClient(h2c(), fx.api.url)
	fx.dir = must(os.MkdirTemp("", "swapmeet-bench-h2load-"))
	e.OnClose(func() error { return os.RemoveAll(fx.dir) })
	rows, _ := e.PG.Query(ctx, `SELECT id::text FROM listings WHERE title LIKE '%, lot %'`)
	ids := must(pgx.CollectRows(rows, pgx.RowTo[string]))
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	fx.hot, fx.changed, fx.cold = ids[:hotListings], ids[hotListings], ids[hotListings+1:]
	for _, binary := range []bool{false, true} {
		hammer(ctx, 8, 5*time.Minute, &pool[string]{items: fx.hot}, func(ctx context.Context, _ int, id string) error {
			return fx.getListing(ctx, fx.api.url, id, binary)
		})
	}
	for i, id := range fx.hot {
		b, err := e.Redis.Get(ctx, e.cache().ListingKey(id)).Bytes()
		if err != nil || len(b) < 17 || b[16] != 'V' {
			check(fmt.Errorf("listing %s is not cached after a read (%q…, %v)", id, b[:min(len(b), 17)], err))
		}
		if i == 0 { // the one redis-benchmark GETs
			fx.docSize = len(b)
		}
	}
	return fx
}

// connectGet is the URL of a Connect unary GET, in JSON or in binary proto.
func connectGet(base, procedure string, msg proto.Message, binary bool) string {
	q := url.Values{"connect": {"v1"}, "encoding": {"json"}}
	if binary {
		b, _ := proto.Marshal(msg)
		q.Set("encoding", "proto")
		q.Set("base64", "1")
		q.Set("message", base64.RawURLEncoding.EncodeToString(b))
	} else {
		b, _ := protojson.Marshal(msg)
		q.Set("message", string(b))
	}
	return base + procedure + "?" + q.Encode()
}

func getListingURLs(base string, ids []string, binary bool) []string {
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = connectGet(base, swapmeetv1connect.ListingServiceGetListingProcedure, &swapmeetv1.GetListingRequest{ListingId: id}, binary)
	}
	return urls
}

// fetch sends a GET (a POST of body, if set) and wants a 200 of content type want.
func (fx *readsFixture) fetch(ctx context.Context, u string, body []byte, want string) ([]byte, error) {
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := fx.check.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); err == nil && (resp.StatusCode != http.StatusOK || ct != want) {
		err = fmt.Errorf("%s %s: %s, %s: %.300s", method, u, resp.Status, ct, b)
	}
	return b, err
}

// getListing GETs one listing as h2load will, and checks the answer.
func (fx *readsFixture) getListing(ctx context.Context, base, id string, binary bool) error {
	ct, decode := "application/json", protojson.Unmarshal
	if binary {
		ct, decode = "application/proto", proto.Unmarshal
	}
	b, err := fx.fetch(ctx, getListingURLs(base, []string{id}, binary)[0], nil, ct)
	if err != nil {
		return err
	}
	var resp swapmeetv1.GetListingResponse
	if err := decode(b, &resp); err != nil || resp.GetListing().GetListingId() != id {
		return fmt.Errorf("GetListing(%s) answered listing %q (%v)", id, resp.GetListing().GetListingId(), err)
	}
	return nil
}

// h2load runs h2load against urls with the suite's connection count.
func (fx *readsFixture) h2load(ctx context.Context, what string, urls []string, body []byte, clients int, d time.Duration) toolResult {
	res := runH2load(ctx, fx.dir, urls, body, clients, d)
	progress("reads: h2load: %s, %d connections: %s, max %s (%d requests)", what, clients, res, ms(res.lat.max), res.lat.n)
	return res
}

// readRound is one round's results: redis, ceiling, JSON, proto and search.
type readRound map[string]toolResult

// measureHits runs readRounds rounds of the hit figures, then hits without the near cache.
func (fx *readsFixture) measureHits(ctx context.Context, clients int, d time.Duration) (_ []row, err error) {
	defer recovered(&err)
	key := fx.e.cache().ListingKey(fx.hot[0])
	var skipped []string
	shapes := slices.Clone(searchShapes)
	health := []string{fx.api.url + healthPath}
	var rounds []readRound
	for i := range readRounds {
		r := readRound{"redis": redisBenchmarkGet(ctx, fx.e.Config.RedisURL, key, clients, d)}
		progress("reads: round %d: redis-benchmark GET of a cached listing (%d bytes): %s", i+1, fx.docSize, r["redis"])
		if b, err := fx.fetch(ctx, health[0], []byte("{}"), "application/json"); err != nil || !bytes.Contains(b, []byte(`"SERVING_STATUS_SERVING"`)) {
			check(fmt.Errorf("Health/Check: %.300s, %v", b, err))
		}
		r["ceiling"] = fx.h2load(ctx, "Connect ceiling, Health/Check POST JSON", health, []byte("{}"), clients, d)
		for _, binary := range []bool{i%2 == 1, i%2 == 0} { // neither encoding always first
			name := map[bool]string{false: "JSON", true: "proto"}[binary]
			check(fx.getListing(ctx, fx.api.url, fx.hot[rand.IntN(len(fx.hot))], binary))
			r[name] = fx.h2load(ctx, "GetListing cache hits, GET "+name, getListingURLs(fx.api.url, fx.hot, binary), nil, clients, d)
		}
		// A page lives a minute: each round orphans the pages and caches them afresh.
		fx.changeAListing(ctx)
		urls, slow := fx.primeSearches(ctx, shapes)
		for _, name := range slow {
			// Left out from here on; FerretDB gets the deadline again to finish the find.
			skipped = append(skipped, fmt.Sprintf("%s (Unavailable when first requested in round %d)", name, i+1))
			shapes = slices.DeleteFunc(shapes, func(s searchShape) bool { return s.name == name })
			wait.Sleep(ctx, 5*time.Second)
		}
		if len(urls) > 0 {
			r["search"] = fx.h2load(ctx, fmt.Sprintf("SearchListings warm pages of %d shapes, GET JSON", len(urls)), urls, nil, clients, d)
		}
		rounds = append(rounds, r)
	}
	// What Redis alone gives: a second serve process without the near cache.
	off := startServeProcess(ctx, fx.e, fx.bin, nearCacheOff)
	defer off.proc.stop(15 * time.Second) //nolint:errcheck
	check(fx.getListing(ctx, off.url, fx.hot[0], false))
	near := fx.h2load(ctx, "GetListing cache hits, GET JSON, "+nearCacheOff, getListingURLs(off.url, fx.hot, false), nil, clients, d)
	return fx.hitRows(clients, rounds, near, len(shapes), skipped), nil
}

// hitRows reads the rounds' medians; a ratio is the median of each round's own ratios.
func (fx *readsFixture) hitRows(clients int, rounds []readRound, near toolResult, shapes int, skipped []string) []row {
	med := func(k string) toolResult {
		return toolResult{rps: median(rounds, func(r readRound) float64 { return r[k].rps }), lat: latencies{
			p50: median(rounds, func(r readRound) time.Duration { return r[k].lat.p50 }),
			p99: median(rounds, func(r readRound) time.Duration { return r[k].lat.p99 })}}
	}
	ratio := func(k, to string) float64 {
		return median(rounds, func(r readRound) float64 { return r[k].rps / r[to].rps })
	}
	ratios := func(k string) string {
		return fmt.Sprintf("%s ceiling, %s redis", times(ratio(k, "ceiling")), times(ratio(k, "redis")))
	}
	ceiling, redis := med("ceiling"), med("redis")
	both := fmt.Sprintf("ceiling %.0f/s; redis-benchmark GET %.0f/s", ceiling.rps, redis.rps)
	each := fmt.Sprintf("h2load, %d conns, median of %d rounds", clients, len(rounds))
	rows := []row{info(fmt.Sprintf("Connect ceiling: Health/Check, POST JSON (%s)", each), ceiling.String(),
		fmt.Sprintf("redis-benchmark GET %s (%d B value)", redis, fx.docSize), times(ratio("ceiling", "redis"))+" redis", "- (ceiling of the rows below)")}
	for _, k := range []string{"JSON", "proto"} {
		res := med(k)
		rows = append(rows, row{fmt.Sprintf("GetListing cache hit, Connect GET %s (%s, %d listings)", k, each, len(fx.hot)), res.String(), both, ratios(k),
			fmt.Sprintf(">= %.1fx ceiling, >= %.1fx redis, p99 < %d ms", hitMinCeiling, hitMinRatio, hitMaxP99.Milliseconds()),
			verdict(ratio(k, "ceiling") >= hitMinCeiling && ratio(k, "redis") >= hitMinRatio && res.lat.p99 < hitMaxP99)})
	}
	rows = append(rows, info(fmt.Sprintf("GetListing hit, Redis only (near cache off), Connect GET JSON (h2load, %d conns, 1 run after the rounds)", clients),
		near.String(), both+" (medians)", fmt.Sprintf("%s ceiling, %s redis", times(near.rps/ceiling.rps), times(near.rps/redis.rps)),
		"- (the JSON row above, without the near cache)"))
	search := info(fmt.Sprintf("SearchListings warm page, Connect GET JSON (%s, %d shapes, %s listings)", each, shapes, fx.size),
		"not measured: no shape's page could be cached", both, "", "no target")
	if shapes == 0 {
		search.verdict = verdictNotMeasured
	} else {
		search.measured, search.ratio = med("search").String(), ratios("search")
	}
	if len(skipped) > 0 {
		search.measured += fmt.Sprintf(" (left out: %s)", strings.Join(skipped, "; "))
	}
	return append(rows, search)
}

// measureMisses: GetListing of unread listings against FerretDB's find by _id of others.
func (fx *readsFixture) measureMisses(ctx context.Context, clients int, d time.Duration) (_ []row, err error) {
	defer recovered(&err)
	half := len(fx.cold) / 2
	ref := hammer(ctx, clients, d, &pool[string]{items: fx.cold[:half]}, func(ctx context.Context, _ int, id string) error {
		_, err := fx.e.Reads.FindRaw(ctx, readstore.Listings, id)
		return err
	})
	missed := &pool[string]{items: fx.cold[half:]}
	res := hammer(ctx, clients, d, missed, func(ctx context.Context, _ int, id string) error {
		_, err := fx.client.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id}))
		return err
	})
	progress("reads: GetListing cache misses, %d clients: %s, max %s; FerretDB find by _id: %s", clients, res, ms(res.lat.max), ref)
	for _, id := range missed.items[:min(20, res.calls)] { // the fill worked
		if n, err := fx.e.Redis.Exists(ctx, fx.e.cache().ListingKey(id)).Result(); err != nil || n != 1 {
			check(fmt.Errorf("listing %s is not cached after a missed GetListing (%v)", id, err))
		}
	}
	measured := res.String()
	if res.exhausted || ref.exhausted {
		measured += " (ran out of unread listings early)"
	}
	return []row{info(fmt.Sprintf("GetListing cache miss + fill (%d clients, %s listings)", clients, fx.size), measured,
		fmt.Sprintf("FerretDB find by _id %.0f/s, p50 %s", ref.rate(), ms(ref.lat.p50)), times(res.rate()/ref.rate()), "no target")}, nil
}

// searchShape is a SearchListings query and the SQL that counts its matches.
type searchShape struct {
	name, count string
	req         *swapmeetv1.SearchListingsRequest
}

var (
	searchShapes = []searchShape{{
		name: "category audio, 50-150 EUR, newest",
		req: &swapmeetv1.SearchListingsRequest{Category: "audio", MinPrice: &swapmeetv1.Money{CurrencyCode: "EUR", AmountMinor: 5000},
			MaxPrice: &swapmeetv1.Money{CurrencyCode: "EUR", AmountMinor: 15000}},
		count: `SELECT count(*) FROM listings WHERE status = 'AVAILABLE' AND category = 'audio' AND price_currency = 'EUR' AND price_minor BETWEEN 5000 AND 15000`,
	}, {
		name:  `keyword "vintage camera", newest`,
		req:   &swapmeetv1.SearchListingsRequest{Query: "vintage camera"},
		count: `SELECT count(*) FROM listings WHERE status = 'AVAILABLE' AND title || ' ' || description ~* '\mvintage\M' AND title || ' ' || description ~* '\mcamera\M'`,
	}, {
		name:  "no filter, price ascending",
		req:   &swapmeetv1.SearchListingsRequest{Sort: swapmeetv1.SearchSort_SEARCH_SORT_PRICE_ASC},
		count: `SELECT count(*) FROM listings WHERE status = 'AVAILABLE'`,
	}}
)

// primeSearches caches each shape's first page and returns the URLs, and the too slow shapes.
func (fx *readsFixture) primeSearches(ctx context.Context, shapes []searchShape) (urls, slow []string) {
	for _, s := range shapes {
		var matches int64
		check(fx.e.PG.QueryRow(ctx, s.count).Scan(&matches))
		u := connectGet(fx.api.url, swapmeetv1connect.ListingServiceSearchListingsProcedure, s.req, false)
		b, err := fx.fetch(ctx, u, nil, "application/json")
		if err != nil && strings.Contains(err.Error(), "503 Service Unavailable") {
			slow = append(slow, s.name)
			continue
		}
		var resp swapmeetv1.SearchListingsResponse
		check(cmp.Or(err, protojson.Unmarshal(b, &resp)))
		if got := int64(len(resp.GetListings())); got != min(matches, 20) {
			check(fmt.Errorf("SearchListings %s: a first page of %d listings; %d match in Postgres", s.name, got, matches))
		}
		urls = append(urls, u)
	}
	return urls, slow
}

// changeAListing changes a listing and waits until serve has it: every cached page is orphaned.
func (fx *readsFixture) changeAListing(ctx context.Context) {
	must(fx.e.PG.Exec(ctx, `UPDATE listings SET version = version + 1, updated_at = now() WHERE id = $1`, fx.changed))
	req := &swapmeetv1.GetListingRequest{ListingId: fx.changed, ConsistencyToken: db.PositionToken(must(sqlc.New(fx.e.PG).CurrentPosition(ctx)))}
	for deadline := time.Now().Add(time.Minute); ; {
		_, err := fx.client.GetListing(ctx, connect.NewRequest(req))
		if err == nil || connect.CodeOf(err) != connect.CodeUnavailable || time.Now().After(deadline) {
			check(err)
			return
		}
	}
}
