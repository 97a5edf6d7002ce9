package search

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// A generation is one complete copy of the projection: the tables
// listings_g<id>, categories_g<id>, orders_g<id> and reviews_g<id>.
// Readers go through the views search_listings, search_categories,
// search_orders and search_reviews, which Switch re-points at a new
// generation in the same transaction that marks it live: a statement
// reads entirely the old generation or entirely the new one, and no
// statement finds neither.

// Generation states, in the order a generation goes through them.
const (
	StateLoading = "loading" // created, being bulk loaded; no secondary indexes yet
	StateSealed  = "sealed"  // indexed and counted; ready to switch to
	StateLive    = "live"    // what readers read
	StateRetired = "retired" // replaced; kept until dropped
)

// Generation describes one generation.
type Generation struct {
	ID               int64
	TextSearchConfig string
	State            string
	// AppliedLSN is the highest commit position a batch wrote into it.
	AppliedLSN int64
}

// ErrNoGeneration means no generation is live: the store was never migrated.
var ErrNoGeneration = errors.New("search: no live generation; run the migrations")

func listingsTable(g int64) string   { return "listings_g" + strconv.FormatInt(g, 10) }
func categoriesTable(g int64) string { return "categories_g" + strconv.FormatInt(g, 10) }

// Live returns the live generation.
func (s *Store) Live(ctx context.Context) (Generation, error) {
	gs, err := s.generations(ctx, "WHERE state = 'live'")
	if err != nil {
		return Generation{}, err
	}
	if len(gs) == 0 {
		return Generation{}, ErrNoGeneration
	}
	return gs[0], nil
}

// Generations lists every generation, oldest first.
func (s *Store) Generations(ctx context.Context) ([]Generation, error) {
	return s.generations(ctx, "")
}

func (s *Store) generations(ctx context.Context, where string) ([]Generation, error) {
	rows, err := s.pool.Query(ctx, "SELECT id, ts_config, state, applied_lsn FROM search_generations "+where+" ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("search: read generations: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Generation, error) {
		var g Generation
		return g, r.Scan(&g.ID, &g.TextSearchConfig, &g.State, &g.AppliedLSN)
	})
	if err != nil {
		return nil, fmt.Errorf("search: read generations: %w", err)
	}
	return gs, nil
}

func (s *Store) generation(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, id int64, lock bool) (Generation, error) {
	sql := "SELECT id, ts_config, state, applied_lsn FROM search_generations WHERE id = $1"
	if lock {
		sql += " FOR UPDATE"
	}
	var g Generation
	err := q.QueryRow(ctx, sql, id).Scan(&g.ID, &g.TextSearchConfig, &g.State, &g.AppliedLSN)
	if errors.Is(err, pgx.ErrNoRows) {
		return g, fmt.Errorf("search: no generation %d", id)
	}
	if err != nil {
		return g, fmt.Errorf("search: read generation %d: %w", id, err)
	}
	return g, nil
}

// CreateGeneration creates an empty generation, stemming with the store's
// text search configuration, ready for Load and Apply.
func (s *Store) CreateGeneration(ctx context.Context) (Generation, error) {
	g := Generation{TextSearchConfig: s.tsconfig, State: StateLoading}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.ensureFolded(ctx, tx); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT nextval('search_generation_ids')").Scan(&g.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO search_generations (id, ts_config, state) VALUES ($1, $2, $3)", g.ID, g.TextSearchConfig, g.State); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, generationSQL("generation.sql", g.ID, g.TextSearchConfig)+";\n"+generationSQL("owners.sql", g.ID, g.TextSearchConfig))
		return err
	})
	if err != nil {
		return Generation{}, fmt.Errorf("search: create generation: %w", err)
	}
	return g, nil
}

var loadColumns = []string{
	"id", "lsn", "status", "version", "seller_id", "seller_name", "seller_rating_average", "seller_rating_count",
	"title", "description", "category", "condition", "currency", "price", "attributes", "media", "created_at", "updated_at",
}

// Load bulk-copies rows into generation g, which must be loading and must
// not hold any of them yet (COPY inserts; a duplicate fails the load).
// Load in as many calls as convenient, then Seal.
func (s *Store) Load(ctx context.Context, g int64, rows []Listing) (int64, error) {
	i := 0
	var rowErr error
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(rows) {
			return nil, nil
		}
		r, err := rowValues(rows[i])
		i++
		if err != nil {
			rowErr = err
		}
		return r, err
	})
	n, err := s.pool.CopyFrom(ctx, pgx.Identifier{listingsTable(g)}, loadColumns, src)
	if rowErr != nil {
		err = rowErr
	}
	if err == nil && len(rows) > 0 {
		// Rows are stamped with the snapshot's position: the generation
		// reflects every write up to it.
		var top int64
		for _, l := range rows {
			top = max(top, l.LSN)
		}
		err = s.raisePosition(ctx, g, top)
	}
	if err != nil {
		return n, fmt.Errorf("search: load generation %d: %w", g, err)
	}
	return n, nil
}

// Seal builds generation g's indexes, counts its categories from its rows
// and analyzes it, so that the planner has statistics before the first
// reader. Writes into g wait while it builds the indexes.
func (s *Store) Seal(ctx context.Context, g int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		gen, err := s.generation(ctx, tx, g, true)
		if err != nil {
			return err
		}
		if gen.State != StateLoading {
			return fmt.Errorf("generation %d is %s, not %s", g, gen.State, StateLoading)
		}
		if _, err := tx.Exec(ctx, generationSQL("indexes.sql", g, gen.TextSearchConfig)+";\n"+generationSQL("owners_indexes.sql", g, gen.TextSearchConfig)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %[2]s (category, available_count)
			SELECT category, count(*) FILTER (WHERE status = 'AVAILABLE') FROM %[1]s WHERE category <> '' GROUP BY category
			ON CONFLICT (category) DO UPDATE SET available_count = excluded.available_count`,
			listingsTable(g), categoriesTable(g))); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE search_generations SET state = $2 WHERE id = $1", g, StateSealed)
		return err
	})
	if err != nil {
		return fmt.Errorf("search: seal generation %d: %w", g, err)
	}
	// Statistics before the first reader, so that its plan uses the
	// indexes, and a visibility map, so that a batch's recount of a
	// category is an index-only scan. VACUUM cannot run in a transaction.
	if _, err := s.pool.Exec(ctx, "VACUUM (ANALYZE) "+listingsTable(g)+", "+categoriesTable(g)+", "+ordersTable(g)+", "+reviewsTable(g)); err != nil {
		return fmt.Errorf("search: analyze generation %d: %w", g, err)
	}
	return nil
}

// Switch makes sealed generation g live and retires the one before, in one
// transaction that also re-points the readers' views.
func (s *Store) Switch(ctx context.Context, g int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		gen, err := s.generation(ctx, tx, g, true)
		if err != nil {
			return err
		}
		if gen.State != StateSealed {
			return fmt.Errorf("generation %d is %s, not %s", g, gen.State, StateSealed)
		}
		if _, err := tx.Exec(ctx, "UPDATE search_generations SET state = 'retired' WHERE state = 'live'"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE search_generations SET state = 'live', live_at = now() WHERE id = $1", g); err != nil {
			return err
		}
		return pointViews(ctx, tx, g)
	})
	if err != nil {
		return fmt.Errorf("search: switch to generation %d: %w", g, err)
	}
	return nil
}

// pointViews re-points the readers' views at generation g. The views list
// their columns so that every generation's view has the same shape, which
// CREATE OR REPLACE VIEW requires.
func pointViews(ctx context.Context, tx pgx.Tx, g int64) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`
		CREATE OR REPLACE VIEW search_listings AS SELECT %[3]s FROM %[1]s;
		CREATE OR REPLACE VIEW search_categories AS SELECT category, available_count FROM %[2]s;
		CREATE OR REPLACE VIEW search_orders AS SELECT id, lsn, buyer_id, seller_id, status, created_at, doc FROM %[4]s;
		CREATE OR REPLACE VIEW search_reviews AS SELECT id, lsn, seller_id, created_at, doc FROM %[5]s`,
		listingsTable(g), categoriesTable(g), viewColumns, ordersTable(g), reviewsTable(g)))
	return err
}

// addOwnerLists gives the generations made before the owner lists existed
// their tables, indexes and views, empty: their rows come with the next
// rebuild (docs/search.md).
func (s *Store) addOwnerLists(ctx context.Context) error {
	gs, err := s.Generations(ctx)
	if err != nil {
		return err
	}
	for _, g := range gs {
		var exists bool
		if err := s.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ordersTable(g.ID)).Scan(&exists); err != nil {
			return fmt.Errorf("search: add owner lists: %w", err)
		}
		if exists {
			continue
		}
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			sql := generationSQL("owners.sql", g.ID, g.TextSearchConfig)
			if g.State != StateLoading {
				sql += ";\n" + generationSQL("owners_indexes.sql", g.ID, g.TextSearchConfig)
			}
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
			if g.State == StateLive {
				return pointViews(ctx, tx, g.ID)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("search: add owner lists to generation %d: %w", g.ID, err)
		}
	}
	return nil
}

const viewColumns = `id, lsn, status, version, seller_id, seller_name, seller_rating_average, seller_rating_count,
	title, description, category, condition, currency, price, attributes, media, created_at, updated_at, tsv`

// Drop removes generation g, which must not be live. Readers still in a
// statement on it finish first (DROP waits for their locks).
func (s *Store) Drop(ctx context.Context, g int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		gen, err := s.generation(ctx, tx, g, true)
		if err != nil {
			return err
		}
		if gen.State == StateLive {
			return fmt.Errorf("generation %d is live", g)
		}
		if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+listingsTable(g)+", "+categoriesTable(g)+", "+ordersTable(g)+", "+reviewsTable(g)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM search_generations WHERE id = $1", g)
		return err
	})
	if err != nil {
		return fmt.Errorf("search: drop generation %d: %w", g, err)
	}
	return nil
}
