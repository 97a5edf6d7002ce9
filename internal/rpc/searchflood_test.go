package rpc_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pglogrepl"
	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// pagesDB is the Redis database the search flood keeps pages in, apart
// from the correctness data in the configured one.
const pagesDB = 1

// TestSearchFloodSparesCorrectnessData: thousands of distinct searches
// stay within the page budget, write no page next to the tombstones, the
// page epoch and the applied position, leave those intact, and the CDC
// keeps applying and acknowledging.
func TestSearchFloodSparesCorrectnessData(t *testing.T) {
	const (
		searches = 2000
		budget   = 100
	)
	e := itest.New(t)
	var pages redis.UniversalClient
	if c, ok := e.Redis.(*redis.Client); ok {
		pagesOpts := *c.Options()
		pagesOpts.DB = pagesDB
		if c.Options().DB == pagesDB {
			pagesOpts.DB = pagesDB + 1
		}
		pages = redis.NewClient(&pagesOpts)
	} else {
		// A Redis Cluster has one database: pages go to a server of their own.
		var err error
		if pages, err = cache.Open(itest.StartRedis(t).URL()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		keys, _ := itest.ScanKeys(context.Background(), pages, e.RedisPrefix+"*")
		for _, k := range keys {
			pages.Del(context.Background(), k)
		}
		_ = pages.Close()
	})
	srv, a := e.StartAPIWith(t, itest.APIOptions{Cache: func(c *cache.Cache) {
		c.WithPages(pages)
		c.PageKeys = budget
	}})
	m := &market{t: t, e: e, srv: srv, app: a}
	m.users = swapmeetv1connect.NewUserServiceClient(srv.Client(), srv.URL)
	m.listings = swapmeetv1connect.NewListingServiceClient(srv.Client(), srv.URL)
	e.StartCDC(t)

	seller := m.signUp("seller")
	var ids []string
	var last string
	for i := range 5 {
		id := m.listing(seller, fmt.Sprint("Lamp ", i))
		res, err := m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{
			ListingId: id, ExpectedVersion: 1, Price: eur(int64(1000 + i)), UpdateMask: mask("price")}, seller.token))
		if err != nil {
			t.Fatal(err)
		}
		ids, last = append(ids, id), res.Msg.ConsistencyToken
	}
	// Once the updates are applied, each listing's key holds a tombstone.
	m.getListing(ids[0], last) // waits for the token; the read's fill is refused or replaces only ids[0]
	c := e.Cache()
	tombstones := map[string]string{}
	for _, id := range ids[1:] {
		v, err := e.Redis.Get(ctx, c.ListingKey(id)).Result()
		if err != nil || len(v) < 17 || v[16] != 'T' {
			t.Fatalf("listing %s: cache holds %q, %v; want a tombstone", id, v, err)
		}
		tombstones[c.ListingKey(id)] = v
	}
	keys := cache.AppliedKeysFor(e.RedisPrefix)
	applied, err := e.Redis.Get(ctx, keys.Applied).Result()
	if err != nil {
		t.Fatal(err)
	}
	gen, err := e.Redis.Get(ctx, c.PageEpochKey("listings")).Result()
	if err != nil {
		t.Fatal(err)
	}

	// The flood: every search distinct by its minimum price.
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > searches {
					return
				}
				_, err := m.listings.SearchListings(ctx, connect.NewRequest(&swapmeetv1.SearchListingsRequest{MinPrice: eur(i), PageSize: 100}))
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d distinct searches in %s", searches, time.Since(start).Round(time.Millisecond))
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d searches failed", n)
	}

	// Pages: within budget, and none among the correctness data.
	if n := countKeys(t, pages, e.RedisPrefix+"page:*"); n == 0 || n > budget {
		t.Errorf("%d pages cached, want 1 to %d", n, budget)
	}
	if n := countKeys(t, e.Redis, e.RedisPrefix+"page:*"); n != 0 {
		t.Errorf("%d pages next to the correctness data", n)
	}
	for k, want := range tombstones {
		if got, err := e.Redis.Get(ctx, k).Result(); err != nil || got != want {
			t.Errorf("tombstone %s is %q, %v after the flood; want %q", k, got, err, want)
		}
	}
	if got, err := e.Redis.Get(ctx, keys.Applied).Result(); err != nil || got < applied {
		t.Errorf("applied position %q, %v after the flood; was %q", got, err, applied)
	}
	if got, err := e.Redis.Get(ctx, c.PageEpochKey("listings")).Result(); err != nil || got != gen {
		t.Errorf("listings page epoch %q, %v after the flood; was %q", got, err, gen)
	}

	// The CDC still applies and acknowledges: a new write reaches the read
	// side, and the slot confirms its position.
	res, err := m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{
		ListingId: ids[0], ExpectedVersion: 2, Price: eur(4242), UpdateMask: mask("price")}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.getListing(ids[0], res.Msg.ConsistencyToken); got.GetPrice().GetAmountMinor() != 4242 {
		t.Fatalf("after the flood the read side shows price %d, want 4242", got.GetPrice().GetAmountMinor())
	}
	pos, err := consistency.ParseWriteToken(res.Msg.ConsistencyToken)
	if err != nil {
		t.Fatal(err)
	}
	lsn := pos.LSN
	itest.Eventually(t, 30*time.Second, "the slot to confirm the write", func() (bool, error) {
		var confirmed pglogrepl.LSN
		var s string
		err := e.PG.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE database = current_database()`).Scan(&s)
		if err != nil {
			return false, err
		}
		if confirmed, err = pglogrepl.ParseLSN(s); err != nil {
			return false, err
		}
		return uint64(confirmed) >= lsn, nil
	})
}

func countKeys(t *testing.T, rdb redis.UniversalClient, pattern string) int {
	t.Helper()
	keys, err := itest.ScanKeys(ctx, rdb, pattern)
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}
