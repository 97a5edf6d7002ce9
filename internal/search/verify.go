package search

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// CategoryCounts are generation g's available counts by category, the
// categories with none included.
func (s *Store) CategoryCounts(ctx context.Context, g int64) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT category, available_count FROM `+categoriesTable(g))
	if err != nil {
		return nil, fmt.Errorf("search: category counts: %w", err)
	}
	out := map[string]int64{}
	var name string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error {
		out[name] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search: category counts: %w", err)
	}
	return out, nil
}

// Rows pages through generation g's listings in id order, after the id
// after ("" for the start), limit at a time, tombstones left out: what a
// verification compares with the source.
func (s *Store) Rows(ctx context.Context, g int64, after string, limit int) ([]Listing, error) {
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	rows, err := s.pool.Query(ctx, `SELECT id::text, lsn, status, version, seller_id::text, seller_name, seller_rating_average,
		seller_rating_count, title, description, category, condition, currency, price, attributes, media, created_at, updated_at
		FROM `+listingsTable(g)+` WHERE id > $1::uuid AND status <> '' ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("search: rows of generation %d: %w", g, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Listing, error) {
		var (
			l            Listing
			sellerID     *string
			attrs, media []byte
		)
		if err := r.Scan(&l.ID, &l.LSN, &l.Status, &l.Version, &sellerID, &l.Seller.DisplayName, &l.Seller.RatingAverage,
			&l.Seller.RatingCount, &l.Title, &l.Description, &l.Category, &l.Condition, &l.Price.Currency, &l.Price.Minor,
			&attrs, &media, &l.CreatedAt, &l.UpdatedAt); err != nil {
			return l, err
		}
		return l, finish(&l, sellerID, attrs, media)
	})
	if err != nil {
		return nil, fmt.Errorf("search: rows of generation %d: %w", g, err)
	}
	return out, nil
}

// finish fills in what a row stores in another shape than Listing's.
func finish(l *Listing, sellerID *string, attrs, media []byte) error {
	if sellerID != nil {
		l.Seller.ID = *sellerID
	}
	if err := json.Unmarshal(attrs, &l.Attributes); err != nil {
		return fmt.Errorf("listing %s attributes: %w", l.ID, err)
	}
	if len(l.Attributes) == 0 {
		l.Attributes = nil
	}
	if err := json.Unmarshal(media, &l.Media); err != nil {
		return fmt.Errorf("listing %s media: %w", l.ID, err)
	}
	if len(l.Media) == 0 {
		l.Media = nil
	}
	l.CreatedAt, l.UpdatedAt = l.CreatedAt.UTC(), l.UpdatedAt.UTC()
	return nil
}
