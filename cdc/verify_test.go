package cdc_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// appliedLSN is the applied position the CDC has announced (0: none).
func appliedLSN(t *testing.T, e *itest.Env) uint64 {
	t.Helper()
	s, err := e.Redis.Get(context.Background(), cache.AppliedKeysFor(e.RedisPrefix).Applied).Result()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	lsn, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatalf("applied position %q: %v", s, err)
	}
	return lsn
}

// waitApplied waits until the CDC has announced lsn as applied.
func waitApplied(t *testing.T, e *itest.Env, lsn uint64) {
	t.Helper()
	itest.Eventually(t, 60*time.Second, "the cdc to apply "+consistency.FormatLSN(lsn), func() (bool, error) {
		return appliedLSN(t, e) >= lsn, nil
	})
}

func execSQL(t *testing.T, e *itest.Env, sql string, args ...any) int64 {
	t.Helper()
	tag, err := e.PG.Exec(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}

func requireNoDrift(t *testing.T, e *itest.Env, what string) {
	t.Helper()
	drifts, err := cdc.Verify(context.Background(), e.PG, e.Reads, readstore.Collections)
	if err != nil {
		t.Fatal(err)
	}
	search, err := cdc.VerifySearch(context.Background(), e.PG, e.Search)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if !cdc.PrintDrift(&b, append(drifts, search)) {
		t.Fatalf("%s: the read side differs from postgres:\n%s", what, b.String())
	}
}

// TestVerifyIsExact: verify finds no drift, run after run, in listings
// with several attributes each (a Go map, which BSON writes in random
// order), and still finds a one-field change; and in the search store, a
// changed and a missing row.
func TestVerifyIsExact(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	e.StartCDC(t)
	execSQL(t, e, `
		WITH s AS (
			INSERT INTO users (id, display_name)
			SELECT gen_random_uuid(), 'Attribute seller ' || g FROM generate_series(1, 10) g
			RETURNING id
		), sellers AS (SELECT array_agg(id) AS ids FROM s)
		INSERT INTO listings (id, seller_id, title, description, category, condition, price_currency, price_minor, attributes)
		SELECT gen_random_uuid(), sellers.ids[1 + g % 10], 'Item ' || g, 'with attributes', 'misc', 'GOOD', 'EUR', 100 + g,
		       jsonb_build_object('color', (ARRAY['red', 'blue', 'green'])[1 + g % 3], 'size', 'M', 'brand', 'Acme ' || g % 7,
		                          'material', 'oak', 'year', (1990 + g % 30)::text, 'era', 'modern')
		FROM generate_series(1, 400) g, sellers`)
	// 20 orders, one listing each, and a review of each.
	execSQL(t, e, `
		WITH o AS (
			INSERT INTO orders (id, buyer_id, seller_id, idempotency_key, status, total_currency, total_minor)
			SELECT gen_random_uuid(), b.id, l.seller_id, 'verify-' || l.id, 'DELIVERED', l.price_currency, l.price_minor
			FROM (SELECT * FROM listings ORDER BY id LIMIT 20) l,
			     LATERAL (SELECT id FROM users WHERE id <> l.seller_id ORDER BY id LIMIT 1) b
			RETURNING id, idempotency_key
		)
		INSERT INTO order_items (order_id, listing_id, title, price_currency, price_minor)
		SELECT o.id, l.id, l.title, l.price_currency, l.price_minor FROM o JOIN listings l ON 'verify-' || l.id = o.idempotency_key`)
	execSQL(t, e, `INSERT INTO reviews (id, order_id, seller_id, author_id, rating, comment)
		SELECT gen_random_uuid(), id, seller_id, buyer_id, 4, 'fine' FROM orders`)
	waitApplied(t, e, e.CurrentLSN(t))

	for run := 1; run <= 5; run++ {
		requireNoDrift(t, e, "run "+strconv.Itoa(run))
	}

	var id string
	if err := e.PG.QueryRow(ctx, `SELECT id::text FROM listings ORDER BY id LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	res, err := e.Reads.DB().Collection(e.Reads.Physical(readstore.Listings)).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "title", Value: "Tampered"}}}})
	if err != nil || res.ModifiedCount != 1 {
		t.Fatalf("change the stored title: %v, %+v", err, res)
	}
	drifts, err := cdc.Verify(ctx, e.PG, e.Reads, []string{readstore.Listings})
	if err != nil {
		t.Fatal(err)
	}
	d := drifts[0]
	if len(d.Missing)+len(d.Extra) != 0 || len(d.Differ) != 1 || d.Differ[0] != id+": title" {
		var b strings.Builder
		cdc.PrintDrift(&b, drifts)
		t.Fatalf("verify after changing one title:\n%s", b.String())
	}

	// The search store: clean, then one changed row, one removed row, of
	// each kind.
	search, err := cdc.VerifySearch(ctx, e.PG, e.Search)
	if err != nil || !search.Clean() || search.Checked != 440 {
		t.Fatalf("verify the search store: %+v, %v", search, err)
	}
	var last string
	if err := e.PG.QueryRow(ctx, `SELECT id::text FROM listings ORDER BY id DESC LIMIT 1`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Search.Pool().Exec(ctx, `UPDATE search_listings SET price = price + 1 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	// A row removed (the count is left as it was, and right), and a
	// category that Postgres does not have counted.
	if _, err := e.Search.Pool().Exec(ctx, `DELETE FROM search_listings WHERE id = $1`, last); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Search.Pool().Exec(ctx, `INSERT INTO search_categories (category, available_count) VALUES ('ghosts', 3)`); err != nil {
		t.Fatal(err)
	}
	var order, review string
	if err := e.PG.QueryRow(ctx, `SELECT (SELECT id::text FROM orders ORDER BY id LIMIT 1), (SELECT id::text FROM reviews ORDER BY id LIMIT 1)`).Scan(&order, &review); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Search.Pool().Exec(ctx, `UPDATE search_orders SET status = 'CANCELLED' WHERE id = $1`, order); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Search.Pool().Exec(ctx, `DELETE FROM search_reviews WHERE id = $1`, review); err != nil {
		t.Fatal(err)
	}
	search, err = cdc.VerifySearch(ctx, e.PG, e.Search)
	if err != nil || len(search.Extra) != 0 || !slices.Equal(search.Missing, []string{last, "reviews/" + review}) ||
		!slices.Equal(search.Differ, []string{id + ": Price", "orders/" + order + ": status", `category "ghosts": 3 available, Postgres has none`}) {
		var b strings.Builder
		cdc.PrintDrift(&b, []cdc.Drift{search})
		t.Fatalf("verify the search store after changing a price and removing a row (%v):\n%s", err, b.String())
	}
}

// TestVerifyReportsADisagreeingHistory: verify finds a history clean
// after writes of every kind, then reports an object whose latest entry
// disagrees with its row, and one whose entries do not chain.
func TestVerifyReportsADisagreeingHistory(t *testing.T) {
	e := itest.New(t)
	e.StartCDC(t)
	_, a := e.StartAPI(t)
	ctx := context.Background()
	if err := itest.NewWorkload(a, 5).Run(ctx, 150); err != nil {
		t.Fatal(err)
	}
	e.WaitConverged(t, 60*time.Second)
	wantHistoryClean(t, e, 20)

	var id, price string
	if err := e.PG.QueryRow(ctx, `SELECT id::text, price_minor::text FROM listings ORDER BY id LIMIT 1`).Scan(&id, &price); err != nil {
		t.Fatal(err)
	}
	// The latest price entry says something else than the row.
	tag, err := e.Search.Pool().Exec(ctx, `
		UPDATE history SET changes = jsonb_build_array(jsonb_build_object('field', 'price.amount_minor', 'before', '', 'after', '1'))
		WHERE (position, seq) = (SELECT position, seq FROM history WHERE object_type = 'listing' AND object_id = $1
		                         AND changes @> '[{"field": "price.amount_minor"}]' ORDER BY position DESC, seq DESC LIMIT 1)`, id)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("tamper with the history: %v, %d rows", err, tag.RowsAffected())
	}
	d, err := cdc.VerifyHistory(ctx, e.PG, e.Search)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.Differ, "listing/"+id+": price.amount_minor") {
		t.Fatalf("verify did not report listing %s (price %s) whose history ends at 1: %v", id, price, d.Differ)
	}
	// An entry recorded twice breaks the chain (another listing's).
	var other string
	if err := e.PG.QueryRow(ctx, `SELECT id::text FROM listings WHERE id <> $1 ORDER BY id LIMIT 1`, id).Scan(&other); err != nil {
		t.Fatal(err)
	}
	entries := func() (n int) {
		_ = e.Search.Pool().QueryRow(ctx, `SELECT count(*) FROM history WHERE object_type = 'listing' AND object_id = $1`, other).Scan(&n)
		return n
	}
	before := entries()
	if _, err := e.PG.Exec(ctx, `UPDATE listings SET price_minor = price_minor + 7 WHERE id = $1`, other); err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, 30*time.Second, "the SQL update's entry", func() (bool, error) { return entries() == before+1, nil })
	if _, err := e.Search.Pool().Exec(ctx, `
		INSERT INTO history (position, seq, commit_time, object_type, object_id, operation, changes, annotated)
		SELECT position + 1, seq, commit_time, object_type, object_id, operation, changes, annotated FROM history
		WHERE object_type = 'listing' AND object_id = $1 ORDER BY position DESC, seq DESC LIMIT 1`, other); err != nil {
		t.Fatal(err)
	}
	d, err = cdc.VerifyHistory(ctx, e.PG, e.Search)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(d.Differ, func(s string) bool {
		return strings.HasPrefix(s, "listing/"+other+": price.amount_minor (does not chain")
	}) {
		t.Fatalf("verify did not report the change recorded twice: %v", d.Differ)
	}
}
