// Package search owns the search projection: one row per listing in a
// Postgres database of the read side, with typed columns for every filter
// and sort of SearchListings, a tsvector for keywords, and the category
// counts. The CDC writes it in batches fenced by commit position; the
// queries read a page in one statement. Rebuilds load a new generation
// beside the live one and switch readers to it in one transaction.
package search

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/semaphore"

	"github.com/swapmeet/swapmeet/internal/roundtrip"
)

// Options are the search store's settings.
type Options struct {
	// TextSearchConfig is the Postgres text search configuration that
	// stems titles, descriptions and queries ("english"). A generation is
	// built with one; changing it takes a rebuild.
	TextSearchConfig string `env:"SWAPMEET_SEARCH_TEXT_CONFIG"`
	// RelevanceCandidates caps the matches a relevance-sorted search ranks:
	// the newest this many.
	RelevanceCandidates int `env:"SWAPMEET_SEARCH_RELEVANCE_CANDIDATES"`
}

// DefaultOptions are the settings a zero Options means.
func DefaultOptions() Options {
	return Options{TextSearchConfig: "english", RelevanceCandidates: 1000}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.TextSearchConfig == "" {
		o.TextSearchConfig = d.TextSearchConfig
	}
	if o.RelevanceCandidates == 0 {
		o.RelevanceCandidates = d.RelevanceCandidates
	}
	return o
}

// Store is the search database.
type Store struct {
	pool *pgxpool.Pool
	opts Options
	// tsconfig is the configuration generations stem with: the setting's,
	// folding accents (see ensureFolded).
	tsconfig string
	// keywordSlots bounds the keyword searches that hold connections at
	// once to half the pool: they are the costliest shapes (a ranking, a
	// fetch of a word's matches), and a flood of them must leave
	// connections to every other shape, the category list and the lists
	// by owner.
	keywordSlots *semaphore.Weighted
	// partitions are the history months known to exist.
	partitions *sync.Map
}

var configRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// New uses pool, which the caller keeps and closes.
func New(pool *pgxpool.Pool, o Options) (*Store, error) {
	o = o.withDefaults()
	if !configRE.MatchString(o.TextSearchConfig) {
		return nil, fmt.Errorf("search: text search configuration %q is not a plain name", o.TextSearchConfig)
	}
	if o.RelevanceCandidates < 1 {
		return nil, fmt.Errorf("search: relevance candidates %d must be at least 1", o.RelevanceCandidates)
	}
	return &Store{pool: pool, opts: o, tsconfig: "swapmeet_" + o.TextSearchConfig,
		keywordSlots: semaphore.NewWeighted(max(1, int64(pool.Config().MaxConns)/2)), partitions: new(sync.Map)}, nil
}

// Open connects to the search database at url.
//
// Its sessions plan every statement for its own arguments
// (plan_cache_mode = force_custom_plan). The pool prepares statements, and
// after five runs Postgres may switch a prepared statement to a generic
// plan made without the values: for a keyword sorted newest first, that
// plan walks the newest-first index filtering on the words instead of
// reading the word's matches from the full-text index (20,167 rows and
// 136 ms against 5 ms for a rare word at 1M listings). Planning a search
// costs well under a millisecond.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	roundtrip.Pool(cfg, roundtrip.Search)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("search: connect: %w", err)
	}
	s, err := New(pool, o)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Pool is the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

//go:embed sql/*.sql
var sqlFiles embed.FS

var migrationRE = regexp.MustCompile(`^([0-9]+)_[a-z_]+\.sql$`)

// Migrate applies the schema's migrations that are not applied yet, in
// order, each in its own transaction under an advisory lock, then makes
// sure a live generation exists (an empty one on a fresh database). It is
// safe to run again, and from several processes at once. It refuses a
// live generation built with another text search configuration.
func (s *Store) Migrate(ctx context.Context) error {
	entries, err := fs.ReadDir(sqlFiles, "sql")
	if err != nil {
		return err
	}
	type migration struct {
		version int
		name    string
	}
	var ms []migration
	for _, e := range entries {
		if m := migrationRE.FindStringSubmatch(e.Name()); m != nil {
			v, _ := strconv.Atoi(m[1])
			ms = append(ms, migration{v, e.Name()})
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("search: migrate: %w", err)
	}
	defer conn.Release()
	// A session lock spans the migrations and the first generation.
	const lock = 0x5ea2c4 // any constant: the database holds only this schema
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
		return fmt.Errorf("search: migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lock) //nolint:errcheck // the session ends with the lock anyway
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS search_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("search: migrate: %w", err)
	}
	var applied int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM search_migrations").Scan(&applied); err != nil {
		return fmt.Errorf("search: migrate: %w", err)
	}
	for _, m := range ms {
		if m.version <= applied {
			continue
		}
		body, err := sqlFiles.ReadFile("sql/" + m.name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO search_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("search: migration %s: %w", m.name, err)
		}
	}
	if err := s.addOwnerLists(ctx); err != nil {
		return err
	}
	live, err := s.Live(ctx)
	switch {
	case errors.Is(err, ErrNoGeneration):
		g, err := s.CreateGeneration(ctx)
		if err == nil {
			err = s.Seal(ctx, g.ID)
		}
		if err == nil {
			err = s.Switch(ctx, g.ID)
		}
		if err != nil {
			return fmt.Errorf("search: first generation: %w", err)
		}
		return nil
	case err != nil:
		return err
	case live.TextSearchConfig == s.opts.TextSearchConfig:
		// Built before accents were folded, with the same language: it
		// keeps serving (its words stem alike; accented ones match only
		// as written) until a rebuild builds a folded generation.
	case live.TextSearchConfig != s.tsconfig:
		return fmt.Errorf("search: the live generation %d stems with %q, the setting says %q (%q): rebuild the projections to change it",
			live.ID, live.TextSearchConfig, s.opts.TextSearchConfig, s.tsconfig)
	}
	return nil
}

// generationSQL is an embedded template with the generation's id and
// configuration filled in.
func generationSQL(file string, g int64, config string) string {
	b, err := sqlFiles.ReadFile("sql/" + file)
	if err != nil {
		panic(err) // embedded
	}
	return strings.NewReplacer("{{gen}}", strconv.FormatInt(g, 10), "{{tsconfig}}", "'"+config+"'::regconfig").Replace(string(b))
}

// ensureFolded creates the store's text search configuration if it is
// missing: a copy of the one the setting names, with the unaccent
// dictionary before that configuration's own for words that are not plain
// ASCII, so that "cafe" finds "café" and the other way round. It runs in
// the transaction that creates a generation; a concurrent creation of the
// same configuration counts as done.
func (s *Store) ensureFolded(ctx context.Context, tx pgx.Tx) error {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = $1 AND pg_ts_config_is_visible(oid))", s.tsconfig).Scan(&exists); err != nil || exists {
		return err
	}
	var base bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = $1 AND pg_ts_config_is_visible(oid))", s.opts.TextSearchConfig).Scan(&base); err != nil {
		return err
	}
	if !base {
		return fmt.Errorf("text search configuration %q does not exist (see pg_ts_config)", s.opts.TextSearchConfig)
	}
	// Both names are plain identifiers (configRE).
	_, err := tx.Exec(ctx, strings.NewReplacer("{{folded}}", s.tsconfig, "{{base}}", s.opts.TextSearchConfig).Replace(`
DO $$
DECLARE m record;
BEGIN
  CREATE TEXT SEARCH CONFIGURATION {{folded}} (COPY = {{base}});
  FOR m IN
    SELECT tt.alias, string_agg(d.oid::regdictionary::text, ', ' ORDER BY cm.mapseqno) AS dicts
    FROM pg_ts_config_map cm
    JOIN pg_ts_config c ON c.oid = cm.mapcfg
    JOIN pg_ts_dict d ON d.oid = cm.mapdict
    CROSS JOIN LATERAL ts_token_type(c.cfgparser) tt
    WHERE cm.mapcfg = '{{base}}'::regconfig AND tt.tokid = cm.maptokentype
      AND tt.alias IN ('word', 'hword', 'hword_part')
    GROUP BY tt.alias
  LOOP
    EXECUTE format('ALTER TEXT SEARCH CONFIGURATION {{folded}} ALTER MAPPING FOR %s WITH unaccent, %s', m.alias, m.dicts);
  END LOOP;
EXCEPTION WHEN unique_violation OR duplicate_object THEN
  NULL; -- another process created it meanwhile
END $$`))
	return err
}
