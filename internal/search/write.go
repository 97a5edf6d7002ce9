package search

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/swapmeet/swapmeet/internal/readstore"
)

// Listing is one row of the projection: what a search filters and sorts
// on, and what a result shows. It mirrors the listings document.
type Listing struct {
	ID          string            `json:"id"`
	Seller      Seller            `json:"seller"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	Category    string            `json:"category"`
	Condition   string            `json:"condition"`
	Price       Money             `json:"price"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Status      string            `json:"status"`
	Version     int64             `json:"version"`
	Media       []Media           `json:"media,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	// LSN is the commit position of the write this row reflects.
	LSN int64 `json:"lsn"`
}

// Seller is the seller's summary a result shows.
type Seller struct {
	ID            string  `json:"id"`
	DisplayName   string  `json:"display_name"`
	RatingAverage float64 `json:"rating_average"`
	RatingCount   int32   `json:"rating_count"`
}

// Money is an amount in minor units.
type Money struct {
	Currency string `json:"currency"`
	Minor    int64  `json:"minor"`
}

// Media is a confirmed image: object keys, never URLs, which are made per
// response.
type Media struct {
	ID           string `json:"id"`
	ContentType  string `json:"content_type"`
	SizeBytes    int64  `json:"size_bytes"`
	Width        int32  `json:"width"`
	Height       int32  `json:"height"`
	ObjectKey    string `json:"object_key"`
	ThumbnailKey string `json:"thumbnail_key"`
}

// Deletion is a listing that no longer exists, as of the commit position LSN.
type Deletion struct {
	ID  string
	LSN int64
}

// Batch is what one CDC batch writes.
type Batch struct {
	// Position is the commit position the batch reaches. The generation's
	// applied position becomes at least this, and every page read after
	// the batch commits reports it.
	Position int64
	// Listings are the current rows of the listings the batch changed,
	// each stamped with the position of the write it reflects.
	Listings []Listing
	// Deleted are the listings the batch found gone.
	Deleted []Deletion
	// Orders and Reviews are the current documents of the orders and
	// reviews the batch changed, each stamped like a listing; the Deleted
	// ones are those it found gone.
	Orders                        []readstore.Order
	Reviews                       []readstore.Review
	DeletedOrders, DeletedReviews []Deletion
}

// row is a listing in the shape of the table's columns.
type row struct {
	id                uuid.UUID
	sellerID          *uuid.UUID
	attributes, media []byte
	l                 Listing
	tombstone         bool
}

func toRow(l Listing) (row, error) {
	id, err := uuid.Parse(l.ID)
	if err != nil {
		return row{}, fmt.Errorf("listing id %q: %w", l.ID, err)
	}
	r := row{id: id, l: l}
	if l.Seller.ID != "" {
		sid, err := uuid.Parse(l.Seller.ID)
		if err != nil {
			return row{}, fmt.Errorf("listing %s: seller id %q: %w", l.ID, l.Seller.ID, err)
		}
		r.sellerID = &sid
	}
	attrs := l.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	media := l.Media
	if media == nil {
		media = []Media{}
	}
	r.attributes, _ = json.Marshal(attrs) // strings only
	r.media, _ = json.Marshal(media)
	return r, nil
}

// rowValues is a listing in loadColumns order.
func rowValues(l Listing) ([]any, error) {
	r, err := toRow(l)
	if err != nil {
		return nil, err
	}
	return []any{r.id, l.LSN, l.Status, l.Version, r.sellerID, l.Seller.DisplayName, l.Seller.RatingAverage, l.Seller.RatingCount,
		l.Title, l.Description, l.Category, l.Condition, l.Price.Currency, l.Price.Minor, string(r.attributes), string(r.media),
		l.CreatedAt, l.UpdatedAt}, nil
}

// Apply writes a batch into generation g in one round trip. One statement
// upserts every listing row, fenced by commit position (a row is replaced
// only by one with a higher LSN, and a deletion leaves a tombstone that
// keeps its LSN), and moves the available counts of the categories by
// what the rows it changed left and entered. A count moves only with a
// row that the fence let through, under that row's lock and from the row
// it replaced, so a replayed batch or a paused old leader's (which the
// fence stops) moves nothing, and two writers of one row cannot both
// count it. One more statement upserts the orders and one the reviews, if
// the batch has any, fenced the same way. All run in one implicit
// transaction.
func (s *Store) Apply(ctx context.Context, g int64, b Batch) error {
	if b.empty() {
		return s.raisePosition(ctx, g, b.Position)
	}
	orders, reviews, err := b.ownerRows()
	if err != nil {
		return fmt.Errorf("search: apply: %w", err)
	}
	// One row per listing, the latest: an upsert cannot change a row twice.
	latest := map[string]int{}
	var rows []row
	put := func(r row) {
		if i, ok := latest[r.l.ID]; ok {
			if rows[i].l.LSN < r.l.LSN {
				rows[i] = r
			}
			return
		}
		latest[r.l.ID] = len(rows)
		rows = append(rows, r)
	}
	for _, l := range b.Listings {
		r, err := toRow(l)
		if err != nil {
			return fmt.Errorf("search: apply: %w", err)
		}
		put(r)
	}
	for _, d := range b.Deleted {
		id, err := uuid.Parse(d.ID)
		if err != nil {
			return fmt.Errorf("search: apply: deleted listing id %q: %w", d.ID, err)
		}
		put(row{id: id, l: Listing{ID: d.ID, LSN: d.LSN, CreatedAt: time.Unix(0, 0), UpdatedAt: time.Unix(0, 0)},
			attributes: []byte("{}"), media: []byte("[]"), tombstone: true})
	}
	n := len(rows)
	var (
		ids, sellerIDs                                                   = make([]string, n), make([]*string, n)
		lsns, versions, prices                                           = make([]int64, n), make([]int64, n), make([]int64, n)
		statuses, names, titles, descs, cats, conds, curs, attrs, medias = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ratings                                                          = make([]float64, n)
		counts                                                           = make([]int32, n)
		created, updated                                                 = make([]time.Time, n), make([]time.Time, n)
	)
	for i, r := range rows {
		l := r.l
		ids[i] = r.id.String()
		if r.sellerID != nil {
			s := r.sellerID.String()
			sellerIDs[i] = &s
		}
		lsns[i], versions[i], prices[i] = l.LSN, l.Version, l.Price.Minor
		statuses[i], names[i], titles[i], descs[i], cats[i], conds[i], curs[i] = l.Status, l.Seller.DisplayName, l.Title, l.Description, l.Category, l.Condition, l.Price.Currency
		if r.tombstone {
			statuses[i], cats[i] = "", ""
		}
		attrs[i], medias[i] = string(r.attributes), string(r.media)
		ratings[i], counts[i] = l.Seller.RatingAverage, l.Seller.RatingCount
		created[i], updated[i] = l.CreatedAt, l.UpdatedAt
	}
	lt, ct := listingsTable(g), categoriesTable(g)
	batch := &pgx.Batch{}
	batch.Queue(fmt.Sprintf(`
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::float8[], $8::int[],
		$9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::text[], $16::text[], $17::timestamptz[], $18::timestamptz[])
		AS u(id, lsn, status, version, seller_id, seller_name, seller_rating_average, seller_rating_count,
			title, description, category, condition, currency, price, attributes, media, created_at, updated_at)
), up AS (
	INSERT INTO %[1]s AS t (id, lsn, status, version, seller_id, seller_name, seller_rating_average, seller_rating_count,
		title, description, category, condition, currency, price, attributes, media, created_at, updated_at)
	SELECT id::uuid, lsn, status, version, seller_id::uuid, seller_name, seller_rating_average, seller_rating_count,
		title, description, category, condition, currency, price, attributes::jsonb, media::jsonb, created_at, updated_at
	FROM input ORDER BY id -- rows locked in one order: two writers cannot deadlock
	ON CONFLICT (id) DO UPDATE SET lsn = excluded.lsn, status = excluded.status, version = excluded.version,
		seller_id = excluded.seller_id, seller_name = excluded.seller_name,
		seller_rating_average = excluded.seller_rating_average, seller_rating_count = excluded.seller_rating_count,
		title = excluded.title, description = excluded.description, category = excluded.category,
		previous_category = CASE WHEN t.status = 'AVAILABLE' THEN t.category END,
		condition = excluded.condition, currency = excluded.currency,
		price = excluded.price, attributes = excluded.attributes, media = excluded.media,
		created_at = excluded.created_at, updated_at = excluded.updated_at
	-- A deletion wins a tie: a full pass stamps what it reads with the
	-- batch's end, and may read a listing that a later read of the same
	-- batch (its sweep) finds deleted. Listing ids never come back.
	WHERE t.lsn < excluded.lsn OR (t.lsn = excluded.lsn AND excluded.status = '' AND t.status <> '')
	-- The category the row counted in before (NULL for a new row) and now.
	RETURNING t.previous_category AS was, CASE WHEN t.status = 'AVAILABLE' THEN t.category END AS now
), moved AS (
	INSERT INTO %[2]s AS c (category, available_count)
	SELECT x, sum(d) FROM up, LATERAL (VALUES (up.was, -1), (up.now, 1)) v(x, d)
	WHERE x IS NOT NULL AND up.was IS DISTINCT FROM up.now
	GROUP BY x HAVING sum(d) <> 0 ORDER BY x -- categories locked in one order
	ON CONFLICT (category) DO UPDATE SET available_count = c.available_count + excluded.available_count
	RETURNING 1
), applied AS (
	UPDATE search_generations SET applied_lsn = greatest(applied_lsn, $19) WHERE id = $20 RETURNING 1
)
SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM moved), (SELECT count(*) FROM applied)`, lt, ct),
		ids, lsns, statuses, versions, sellerIDs, names, ratings, counts,
		titles, descs, cats, conds, curs, prices, attrs, medias, created, updated, b.Position, g)
	queueOrders(batch, g, orders)
	queueReviews(batch, g, reviews)
	br := s.pool.SendBatch(ctx, batch)
	var written, moved, gens int64
	err = br.QueryRow().Scan(&written, &moved, &gens)
	if err == nil && gens == 0 {
		err = fmt.Errorf("no generation %d", g)
	}
	for i := 1; i < batch.Len() && err == nil; i++ {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("search: apply %d listings, %d orders, %d reviews to generation %d: %w", n, len(orders), len(reviews), g, err)
	}
	return nil
}

// empty reports a batch that only moves the position.
func (b Batch) empty() bool {
	return len(b.Listings)+len(b.Deleted)+len(b.Orders)+len(b.DeletedOrders)+len(b.Reviews)+len(b.DeletedReviews) == 0
}

// raisePosition raises generation g's applied position to pos: a batch
// with no rows, the end of one whose rows its pages wrote, or rows a bulk
// load copied. The
// position only says what a page reflects (consistency tokens are served
// by the announcements, never by it), and every row is committed durably
// by its own statement, so this commit does not wait for the disk: a
// crash of the search store's server can only leave the position behind,
// and the next batch raises it again.
func (s *Store) raisePosition(ctx context.Context, g, pos int64) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	if err := s.sendRaising(ctx, b, g, pos); err != nil {
		return fmt.Errorf("search: raise generation %d to %d: %w", g, pos, err)
	}
	return nil
}

// sendRaising sends b, a transaction begun, with generation g's applied
// position raised to pos and the commit after it, in one round trip.
func (s *Store) sendRaising(ctx context.Context, b *pgx.Batch, g, pos int64) error {
	raise := b.Len()
	b.Queue("UPDATE search_generations SET applied_lsn = greatest(applied_lsn, $1) WHERE id = $2", pos, g)
	b.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, b)
	var err error
	for i := 0; i < b.Len() && err == nil; i++ {
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		if err == nil && i == raise && tag.RowsAffected() == 0 {
			err = fmt.Errorf("no generation %d", g)
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}
