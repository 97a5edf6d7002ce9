package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// Fixtures go straight into Postgres and Mongo: no figure measures SignUp or the CDC's first pass.

// benchUser is a user with an open session.
type benchUser struct {
	id    uuid.UUID
	token string // the bearer token; Postgres holds its SHA-256
}

// insertUsers creates n users named after role, each with a session (and no usable password).
func insertUsers(ctx context.Context, pg *pgxpool.Pool, role string, n int) []benchUser {
	users := make([]benchUser, n)
	var userRows, credRows, sessionRows [][]any
	for i := range users {
		id, b := uuid.Must(uuid.NewV7()), make([]byte, 32)
		_, _ = rand.Read(b)
		users[i] = benchUser{id: id, token: base64.RawURLEncoding.EncodeToString(b)} // as internal/app makes tokens
		hash := sha256.Sum256([]byte(users[i].token))
		userRows = append(userRows, []any{id, fmt.Sprintf("bench %s %d", role, i)})
		credRows = append(credRows, []any{id, fmt.Sprintf("%s-%d-%s@bench.invalid", role, i, id), "!bench-fixture"})
		sessionRows = append(sessionRows, []any{hash[:], id, time.Now().Add(24 * time.Hour)})
	}
	must(pg.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "display_name"}, pgx.CopyFromRows(userRows)))
	must(pg.CopyFrom(ctx, pgx.Identifier{"user_credentials"}, []string{"user_id", "email", "password_hash"}, pgx.CopyFromRows(credRows)))
	must(pg.CopyFrom(ctx, pgx.Identifier{"sessions"}, []string{"token_hash", "user_id", "expires_at"}, pgx.CopyFromRows(sessionRows)))
	return users
}

// insertListings creates n listings over the sellers, and analyzes.
func insertListings(ctx context.Context, e *env, sellers []benchUser, n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	rows := make([][]any, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		rows[i] = []any{ids[i], sellers[i%len(sellers)].id, fmt.Sprintf("Bench item %d", i),
			"A listing made by swapmeet-bench.", "bench", "GOOD", "EUR", int64(1000 + i%9000)}
	}
	must(e.PG.CopyFrom(ctx, pgx.Identifier{"listings"}, []string{"id", "seller_id", "title", "description", "category", "condition",
		"price_currency", "price_minor"}, pgx.CopyFromRows(rows)))
	e.asOwner(ctx, "ANALYZE")
	return ids
}

// The generated catalogue: titles combine one of 13 adjectives with one of
// 17 nouns and a lot number, so "vintage camera" matches about 1 listing
// in 221; categories, conditions, prices and attributes cycle with moduli
// that cut across the words; created_at steps back a second a listing.
var (
	catalogueAdjectives = []string{"vintage", "modern", "rare", "classic", "compact", "sturdy", "elegant", "retro", "handmade", "portable", "antique", "mint", "wooden"}
	catalogueNouns      = []string{"camera", "lamp", "bicycle", "guitar", "chair", "table", "watch", "jacket", "radio", "turntable", "keyboard", "lens", "backpack", "teapot", "novel", "puzzle", "kettle"}
	catalogueCategories = []string{"cameras", "audio", "bikes", "furniture", "clothing", "books", "toys", "kitchen", "garden", "tools",
		"music", "sports", "art", "jewelry", "games", "computers", "phones", "lighting", "watches", "outdoor"}
)

func sqlArray(words []string) string { return "ARRAY['" + strings.Join(words, "','") + "']" }

// seedCatalogue inserts sellers and n listings (descTail: SQL over row g added to descriptions).
func seedCatalogue(ctx context.Context, e *env, n, sellers int, descTail string) time.Duration {
	start := time.Now()
	insertUsers(ctx, e.PG, "seller", sellers)
	conn := backlogConn(ctx, e)
	defer conn.Close(context.WithoutCancel(ctx))
	for from := 1; from <= n; from += 250_000 {
		must(conn.Exec(ctx, fmt.Sprintf(`
			INSERT INTO listings (id, seller_id, title, description, category, condition,
			                      price_currency, price_minor, attributes, created_at, updated_at)
			SELECT gen_random_uuid(), s.ids[1 + g %% cardinality(s.ids)],
			       initcap(a.w[1 + g %% 13]) || ' ' || a.n[1 + (g / 13) %% 17] || ', lot ' || g,
			       'A ' || a.w[1 + (g / 7) %% 13] || ' ' || a.n[1 + g %% 17] || ' in ' || lower(c.c[1 + g %% 5]) ||
			       ' condition. Collected in the ' || (1950 + 10 * (g %% 7)) || 's; ships within three days.'%s,
			       a.cat[1 + (g / 3) %% 20], c.c[1 + g %% 5], 'EUR', 100 + (g::bigint * 7919) %% 99900,
			       jsonb_build_object('color', (ARRAY['red','blue','green','black','white','brown'])[1 + g %% 6],
			                          'size', (ARRAY['S','M','L','XL'])[1 + g %% 4], 'brand', 'brand' || g %% 50),
			       now() - make_interval(secs => g), now() - make_interval(secs => g)
			FROM generate_series($1::int, $2::int) g,
			     (SELECT array_agg(id ORDER BY id) AS ids FROM users) s,
			     (SELECT %s AS w, %s AS n, %s AS cat) a,
			     (SELECT ARRAY['NEW','LIKE_NEW','GOOD','FAIR','POOR'] AS c) c`,
			descTail, sqlArray(catalogueAdjectives), sqlArray(catalogueNouns), sqlArray(catalogueCategories)), from, min(n, from+250_000-1)))
	}
	e.asOwner(ctx, "ANALYZE")
	progress("catalogue: %d listings of %d sellers in Postgres in %s", n, sellers, time.Since(start).Round(time.Millisecond))
	return time.Since(start)
}

// listingIDs runs a query of listing ids.
func listingIDs(ctx context.Context, pg *pgxpool.Pool, sql string, args ...any) []uuid.UUID {
	rows, _ := pg.Query(ctx, sql, args...)
	return must(pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]))
}

// listingDocs builds listings' documents as the projector does, in the order of ids, stamped lsn.
func listingDocs(ctx context.Context, pg *pgxpool.Pool, ids []uuid.UUID, lsn int64) []readstore.Listing {
	docs := must(projection.For(readstore.Listings).Build(ctx, sqlc.New(pg), ids, lsn))
	out := make([]readstore.Listing, 0, len(docs))
	for _, id := range ids {
		if d, ok := docs[id]; ok {
			out = append(out, d.(readstore.Listing))
		}
	}
	return out
}

// bulkLoad is what loading documents observed.
type bulkLoad struct {
	docs       int64
	avgBytes   float64       // BSON bytes per document, of the first page
	busy, wall time.Duration // inside InsertMany; in all
}

// bulkLoadListings inserts the n listings at LSN 1 into collection, 500 an InsertMany, as a rebuild.
func bulkLoadListings(ctx context.Context, s *readstore.Model, pg *pgxpool.Pool, collection string, n int) bulkLoad {
	var res bulkLoad
	start := time.Now()
	for ids := []uuid.UUID{uuid.Nil}; ; {
		ids = must(projection.For(readstore.Listings).IDs(ctx, sqlc.New(pg), ids[len(ids)-1], 500))
		if len(ids) == 0 {
			break
		}
		docs := make([]any, len(ids))
		for i, d := range listingDocs(ctx, pg, ids, 1) {
			docs[i] = d
			if b, _ := bson.Marshal(d); res.docs == 0 {
				res.avgBytes += float64(len(b)) / float64(len(ids))
			}
		}
		t0 := time.Now()
		check(s.InsertMany(ctx, collection, docs))
		res.busy += time.Since(t0)
		res.docs += int64(len(docs))
	}
	if res.wall = time.Since(start); res.docs != int64(n) {
		check(fmt.Errorf("loaded %d documents; postgres has %d listings", res.docs, n))
	}
	return res
}

// loadCatalogue loads documents, indexes, slot and pointer as a first start of the CDC leaves them.
func loadCatalogue(ctx context.Context, e *env, n int) {
	progress("catalogue: %d listing documents loaded in %s", n, bulkLoadListings(ctx, e.Reads, e.PG, readstore.Listings, n).wall.Round(time.Millisecond))
	settleReadStore(ctx, e)
	firstStart(ctx, e)
}

// settleReadStore vacuums and analyzes FerretDB's tables of the env's
// database at once, when the services run FerretDB on a Postgres the
// bench can reach (SWAPMEET_READ_PG_URL), as autovacuum does about half a
// minute after a bulk load. Until then every write to a table just loaded
// runs at a third of its speed (2 cores, FerretDB 1.24: 250–400 against
// 700–1,100 documents/s), ANALYZE alone does not change that, and the
// first figures would measure it. MongoDB has no such step.
func settleReadStore(ctx context.Context, e *env) {
	url := os.Getenv("SWAPMEET_READ_PG_URL")
	if url == "" {
		return
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		progress("catalogue: FerretDB's Postgres at SWAPMEET_READ_PG_URL: %v; autovacuum settles its tables", err)
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, _ := conn.Query(ctx, `SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables WHERE schemaname = $1`, e.Config.MongoDB)
	tables := must(pgx.CollectRows(rows, pgx.RowTo[string]))
	start := time.Now()
	for _, t := range tables {
		must(conn.Exec(ctx, "VACUUM (ANALYZE) "+t))
	}
	progress("catalogue: %d of FerretDB's tables vacuumed and analyzed in %s", len(tables), time.Since(start).Round(time.Millisecond))
}

// firstStart makes the env's slot and the read side's pointer to it.
func firstStart(ctx context.Context, e *env) {
	createSlot(ctx, e, e.Config.Slot)
	check(e.Reads.SavePointer(ctx, readstore.InitialPointer(e.Config.Slot)))
}

// createSlot makes a slot at the current WAL position: what follows is its backlog.
func createSlot(ctx context.Context, e *env, name string) {
	must(e.PG.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, name))
}

// backlogConn writes without waiting for each commit's fsync (only the generator would pay).
func backlogConn(ctx context.Context, e *env) *pgx.Conn {
	cfg := must(pgx.ParseConfig(e.Config.PostgresURL))
	cfg.RuntimeParams["synchronous_commit"] = "off"
	return must(pgx.ConnectConfig(ctx, cfg))
}

func currentLSN(ctx context.Context, conn interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) pglogrepl.LSN {
	var s string
	check(conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&s))
	return must(pglogrepl.ParseLSN(s))
}
