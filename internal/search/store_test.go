package search

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// serverURL is the read side's Postgres, on which each test creates and
// drops its own database.
func serverURL() string {
	if u := os.Getenv("SWAPMEET_READ_PG_URL"); u != "" {
		return u
	}
	return "postgres://ferretdb:ferretdb@127.0.0.1:15433/ferretdb?sslmode=disable"
}

// newStore returns a migrated store on a fresh database, dropped when the
// test ends.
func newStore(t testing.TB, o Options) *Store {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "swapmeet_search_test_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, serverURL())
	if err != nil {
		t.Fatalf("the read side's Postgres is unreachable (scripts/services.sh up starts it): %v", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	u, _ := url.Parse(serverURL())
	u.Path = "/" + name
	s, err := Open(ctx, u.String(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if keep[t.Name()] {
			t.Logf("kept the database %s", u.Redacted())
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, serverURL())
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close(ctx)
		// The store's pool is closed: a plain DROP stops the autovacuum
		// workers a large load may have started in the database, which
		// FORCE would need the right to signal; FORCE ends what is left.
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err == nil {
			return
		}
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// keep names the tests whose database outlives them.
var keep = map[string]bool{}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// listing is a valid available listing created n minutes after epoch.
func listing(n int, title string) Listing {
	return Listing{
		ID:          uuid.Must(uuid.NewV7()).String(),
		Seller:      Seller{ID: "0190a000-0000-7000-8000-000000000001", DisplayName: "Ada", RatingAverage: 4.5, RatingCount: 2},
		Title:       title,
		Description: "",
		Category:    "furniture",
		Condition:   "GOOD",
		Price:       Money{Currency: "EUR", Minor: int64(100 * (n + 1))},
		Status:      StatusAvailable,
		Version:     1,
		CreatedAt:   epoch.Add(time.Duration(n) * time.Minute),
		UpdatedAt:   epoch.Add(time.Duration(n) * time.Minute),
		LSN:         int64(1000 + n),
	}
}

func live(t testing.TB, s *Store) int64 {
	t.Helper()
	g, err := s.Live(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return g.ID
}

func apply(t testing.TB, s *Store, b Batch) {
	t.Helper()
	if err := s.Apply(context.Background(), live(t, s), b); err != nil {
		t.Fatal(err)
	}
}

func search(t testing.TB, s *Store, q Query) Page {
	t.Helper()
	p, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	return p
}

// all pages through a query, returning the ids in order.
func all(t testing.TB, s *Store, q Query) []string {
	t.Helper()
	var ids []string
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("paging does not end")
		}
		p := search(t, s, q)
		for _, l := range p.Listings {
			ids = append(ids, l.ID)
		}
		if p.Next == "" {
			return ids
		}
		q.PageToken = p.Next
	}
}

func categories(t testing.TB, s *Store) map[string]int64 {
	t.Helper()
	cs, _, err := s.Categories(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, c := range cs {
		m[c.Name] = c.Count
	}
	return m
}

func TestMigrateIsIdempotentAndKeepsItsConfiguration(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	gs, err := s.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].State != StateLive || gs[0].TextSearchConfig != "swapmeet_english" {
		t.Fatalf("generations after two migrations: %+v", gs)
	}
	other, err := New(s.Pool(), Options{TextSearchConfig: "simple"})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Migrate(ctx); err == nil {
		t.Fatal("a store stemming with another configuration than its live generation migrated without complaint")
	}
	missing, err := New(s.Pool(), Options{TextSearchConfig: "no_such_language"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.CreateGeneration(ctx); err == nil || !strings.Contains(err.Error(), `"no_such_language" does not exist`) {
		t.Fatalf("a generation with a configuration that does not exist: %v", err)
	}
	if _, err := New(s.Pool(), Options{TextSearchConfig: "english'; DROP TABLE x; --"}); err == nil {
		t.Fatal("a configuration name that is not a plain name was accepted")
	}
}

func TestRoundTripKeepsEveryField(t *testing.T) {
	s := newStore(t, Options{})
	l := listing(1, "Oak chair")
	l.Description = "Solid oak"
	l.Attributes = map[string]string{"colour": "brown", "material": "oak"}
	l.Media = []Media{{ID: "m1", ContentType: "image/jpeg", SizeBytes: 10, Width: 2, Height: 3, ObjectKey: "k", ThumbnailKey: "t"}}
	l.CreatedAt = l.CreatedAt.Add(123456 * time.Microsecond)
	apply(t, s, Batch{Position: 2000, Listings: []Listing{l}})
	p := search(t, s, Query{})
	if len(p.Listings) != 1 {
		t.Fatalf("got %d listings, want 1", len(p.Listings))
	}
	if got, want := fmt.Sprintf("%+v", p.Listings[0]), fmt.Sprintf("%+v", l); got != want {
		t.Fatalf("round trip:\n got %s\nwant %s", got, want)
	}
	if p.LSN != 2000 {
		t.Fatalf("page position %d, want the batch's 2000", p.LSN)
	}
	b, lsn, err := s.SearchPage(context.Background(), Query{})
	if err != nil || lsn != 2000 {
		t.Fatalf("SearchPage: %v, lsn %d", err, lsn)
	}
	back, err := DecodePage(b)
	if err != nil || fmt.Sprintf("%+v", back) != fmt.Sprintf("%+v", p) {
		t.Fatalf("DecodePage: %v\n got %+v\nwant %+v", err, back, p)
	}
}

// Every search is planned for its own words and bounds: a generic plan
// of a prepared statement read a rare keyword's page by walking the
// newest-first index (see Open).
func TestSessionsPlanForTheirArguments(t *testing.T) {
	s := newStore(t, Options{})
	var mode string
	if err := s.Pool().QueryRow(context.Background(), "SHOW plan_cache_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "force_custom_plan" {
		t.Fatalf("plan_cache_mode = %q, want force_custom_plan", mode)
	}
}
