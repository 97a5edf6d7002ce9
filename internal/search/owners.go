package search

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/swapmeet/swapmeet/internal/readstore"
)

// The owner lists: a user's orders, as buyer or as seller, and a seller's
// reviews, newest first. A generation holds a row per order
// (orders_g<id>) and per review (reviews_g<id>): the owners, the status
// and created_at as columns that B-trees end with (created_at, id), and
// the document as jsonb, so that a page is one range scan. The rows are
// written by the same batches, fenced by the same positions, loaded and
// switched with the same generations as the listings.

func ordersTable(g int64) string  { return "orders_g" + strconv.FormatInt(g, 10) }
func reviewsTable(g int64) string { return "reviews_g" + strconv.FormatInt(g, 10) }

// Order roles of an OrderFilter.
const (
	RoleBuyer  = "buyer"
	RoleSeller = "seller"
)

// OrderFilter narrows a user's orders.
type OrderFilter struct {
	UserID string
	Role   string // RoleBuyer or RoleSeller
	Status string // "" = any
}

// ListOrders returns up to limit of a user's orders, newest first (by
// created_at, then id), after the cursor (nil: from the start), and
// whether more follow.
func (s *Store) ListOrders(ctx context.Context, f OrderFilter, cur *readstore.Cursor, limit int) ([]readstore.Order, bool, error) {
	owner := "buyer_id"
	switch f.Role {
	case RoleBuyer:
	case RoleSeller:
		owner = "seller_id"
	default:
		return nil, false, fmt.Errorf("search: list orders: role %q", f.Role)
	}
	sql, args := ordersSQL(owner, f, cur, limit)
	return ownerPage[readstore.Order](ctx, s, sql, args, limit)
}

func ordersSQL(owner string, f OrderFilter, cur *readstore.Cursor, limit int) (string, []any) {
	args := []any{f.UserID}
	where := owner + " = $1::uuid"
	if f.Status != "" {
		args = append(args, f.Status)
		where += " AND status = $2"
	}
	return ownerSQL("search_orders", where, args, cur, limit)
}

// ListSellerReviews returns up to limit of a seller's reviews, newest
// first, after the cursor, and whether more follow.
func (s *Store) ListSellerReviews(ctx context.Context, sellerID string, cur *readstore.Cursor, limit int) ([]readstore.Review, bool, error) {
	sql, args := ownerSQL("search_reviews", "seller_id = $1::uuid", []any{sellerID}, cur, limit)
	return ownerPage[readstore.Review](ctx, s, sql, args, limit)
}

// ownerSQL is the statement of a page of an owner list: one more row than
// asked, to know whether a next page exists.
func ownerSQL(view, where string, args []any, cur *readstore.Cursor, limit int) (string, []any) {
	if cur != nil {
		n := len(args)
		args = append(args, cur.CreatedAt, cur.ID)
		where += fmt.Sprintf(" AND (created_at, id) < ($%d::timestamptz, $%d::uuid)", n+1, n+2)
	}
	return "SELECT doc FROM " + view + " WHERE " + where + " ORDER BY created_at DESC, id DESC LIMIT " + strconv.Itoa(limit+1), args
}

func ownerPage[T any](ctx context.Context, s *Store, sql string, args []any, limit int) ([]T, bool, error) {
	if _, err := uuid.Parse(args[0].(string)); err != nil {
		return nil, false, fmt.Errorf("search: owner list: owner id %q: %w", args[0], err)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("search: owner list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) {
		var doc T
		var b []byte
		if err := r.Scan(&b); err != nil {
			return doc, err
		}
		return doc, json.Unmarshal(b, &doc)
	})
	if err != nil {
		return nil, false, fmt.Errorf("search: owner list: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// ownerRow is an order or a review in the shape of its table's columns.
type ownerRow struct {
	id, buyer, seller *string // buyer is unused for reviews; nil owners and doc: a tombstone
	lsn               int64
	status            string
	createdAt         time.Time
	doc               *string
}

func orderRow(o readstore.Order) (ownerRow, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return ownerRow{}, fmt.Errorf("order %s: %w", o.ID, err)
	}
	doc := string(b)
	return ownerRow{id: &o.ID, buyer: &o.Buyer.ID, seller: &o.Seller.ID, lsn: o.LSN, status: o.Status,
		createdAt: o.CreatedAt, doc: &doc}, nil
}

func reviewRow(r readstore.Review) (ownerRow, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return ownerRow{}, fmt.Errorf("review %s: %w", r.ID, err)
	}
	doc := string(b)
	return ownerRow{id: &r.ID, seller: &r.SellerID, lsn: r.LSN, createdAt: r.CreatedAt, doc: &doc}, nil
}

func tombstone(d Deletion) ownerRow {
	return ownerRow{id: &d.ID, lsn: d.LSN, createdAt: time.Unix(0, 0)}
}

// latestOwnerRows keeps one row per id, the one with the highest
// position; a deletion wins a tie.
func latestOwnerRows(rows []ownerRow) []ownerRow {
	at := map[string]int{}
	var out []ownerRow
	for _, r := range rows {
		i, ok := at[*r.id]
		if !ok {
			at[*r.id] = len(out)
			out = append(out, r)
			continue
		}
		if o := out[i]; o.lsn < r.lsn || (o.lsn == r.lsn && r.doc == nil) {
			out[i] = r
		}
	}
	return out
}

// ownerRows turns a batch's orders and reviews into rows.
func (b Batch) ownerRows() (orders, reviews []ownerRow, err error) {
	for _, o := range b.Orders {
		r, err := orderRow(o)
		if err != nil {
			return nil, nil, err
		}
		orders = append(orders, r)
	}
	for _, d := range b.DeletedOrders {
		orders = append(orders, tombstone(d))
	}
	for _, rv := range b.Reviews {
		r, err := reviewRow(rv)
		if err != nil {
			return nil, nil, err
		}
		reviews = append(reviews, r)
	}
	for _, d := range b.DeletedReviews {
		reviews = append(reviews, tombstone(d))
	}
	return latestOwnerRows(orders), latestOwnerRows(reviews), nil
}

// queueOrders queues the fenced upsert of orders into generation g: a row
// is replaced only by one with a higher position, or by a deletion at the
// same one (as for the listings).
func queueOrders(batch *pgx.Batch, g int64, rows []ownerRow) {
	if len(rows) == 0 {
		return
	}
	n := len(rows)
	ids, buyers, sellers, statuses, docs := make([]*string, n), make([]*string, n), make([]*string, n), make([]string, n), make([]*string, n)
	lsns, created := make([]int64, n), make([]time.Time, n)
	for i, r := range rows {
		ids[i], buyers[i], sellers[i], statuses[i], docs[i], lsns[i], created[i] = r.id, r.buyer, r.seller, r.status, r.doc, r.lsn, r.createdAt
	}
	batch.Queue(`INSERT INTO `+ordersTable(g)+` AS t (id, lsn, buyer_id, seller_id, status, created_at, doc)
	SELECT id::uuid, lsn, buyer_id::uuid, seller_id::uuid, status, created_at, doc::jsonb
	FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[])
		AS u(id, lsn, buyer_id, seller_id, status, created_at, doc)
	ORDER BY id
	ON CONFLICT (id) DO UPDATE SET lsn = excluded.lsn, buyer_id = excluded.buyer_id, seller_id = excluded.seller_id,
		status = excluded.status, created_at = excluded.created_at, doc = excluded.doc
	WHERE t.lsn < excluded.lsn OR (t.lsn = excluded.lsn AND excluded.doc IS NULL AND t.doc IS NOT NULL)`,
		ids, lsns, buyers, sellers, statuses, created, docs)
}

// queueReviews is queueOrders for reviews.
func queueReviews(batch *pgx.Batch, g int64, rows []ownerRow) {
	if len(rows) == 0 {
		return
	}
	n := len(rows)
	ids, sellers, docs := make([]*string, n), make([]*string, n), make([]*string, n)
	lsns, created := make([]int64, n), make([]time.Time, n)
	for i, r := range rows {
		ids[i], sellers[i], docs[i], lsns[i], created[i] = r.id, r.seller, r.doc, r.lsn, r.createdAt
	}
	batch.Queue(`INSERT INTO `+reviewsTable(g)+` AS t (id, lsn, seller_id, created_at, doc)
	SELECT id::uuid, lsn, seller_id::uuid, created_at, doc::jsonb
	FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[]) AS u(id, lsn, seller_id, created_at, doc)
	ORDER BY id
	ON CONFLICT (id) DO UPDATE SET lsn = excluded.lsn, seller_id = excluded.seller_id,
		created_at = excluded.created_at, doc = excluded.doc
	WHERE t.lsn < excluded.lsn OR (t.lsn = excluded.lsn AND excluded.doc IS NULL AND t.doc IS NOT NULL)`,
		ids, lsns, sellers, created, docs)
}

// LoadOrders bulk-copies orders into generation g, as Load does listings.
func (s *Store) LoadOrders(ctx context.Context, g int64, docs []readstore.Order) (int64, error) {
	rows := make([][]any, 0, len(docs))
	var top int64
	for _, o := range docs {
		r, err := orderRow(o)
		if err != nil {
			return 0, fmt.Errorf("search: load orders: %w", err)
		}
		rows = append(rows, []any{*r.id, r.lsn, *r.buyer, *r.seller, r.status, r.createdAt, *r.doc})
		top = max(top, o.LSN)
	}
	return s.copyRows(ctx, g, ordersTable(g), []string{"id", "lsn", "buyer_id", "seller_id", "status", "created_at", "doc"}, rows, top)
}

// LoadReviews bulk-copies reviews into generation g.
func (s *Store) LoadReviews(ctx context.Context, g int64, docs []readstore.Review) (int64, error) {
	rows := make([][]any, 0, len(docs))
	var top int64
	for _, rv := range docs {
		r, err := reviewRow(rv)
		if err != nil {
			return 0, fmt.Errorf("search: load reviews: %w", err)
		}
		rows = append(rows, []any{*r.id, r.lsn, *r.seller, r.createdAt, *r.doc})
		top = max(top, rv.LSN)
	}
	return s.copyRows(ctx, g, reviewsTable(g), []string{"id", "lsn", "seller_id", "created_at", "doc"}, rows, top)
}

func (s *Store) copyRows(ctx context.Context, g int64, table string, columns []string, rows [][]any, top int64) (int64, error) {
	n, err := s.pool.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromRows(rows))
	if err == nil && len(rows) > 0 {
		err = s.raisePosition(ctx, g, top)
	}
	if err != nil {
		return n, fmt.Errorf("search: load %s: %w", table, err)
	}
	return n, nil
}

// OrderRows pages through generation g's orders in id order, after the id
// after ("" for the start), tombstones left out: what a verification
// compares with the source. The owners, status and created_at are taken
// from the columns, so that a column that disagrees with its document
// shows as a difference.
func (s *Store) OrderRows(ctx context.Context, g int64, after string, limit int) ([]readstore.Order, error) {
	return ownerRows(ctx, s, ordersTable(g), "buyer_id::text, seller_id::text, status", after, limit,
		func(o *readstore.Order, buyer, seller, status string, at time.Time) {
			o.Buyer.ID, o.Seller.ID, o.Status, o.CreatedAt = buyer, seller, status, at
		})
}

// ReviewRows is OrderRows for reviews.
func (s *Store) ReviewRows(ctx context.Context, g int64, after string, limit int) ([]readstore.Review, error) {
	return ownerRows(ctx, s, reviewsTable(g), "''::text, seller_id::text, ''::text", after, limit,
		func(r *readstore.Review, _, seller, _ string, at time.Time) { r.SellerID, r.CreatedAt = seller, at })
}

func ownerRows[T any](ctx context.Context, s *Store, table, columns, after string, limit int, set func(d *T, buyer, seller, status string, at time.Time)) ([]T, error) {
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	rows, err := s.pool.Query(ctx, "SELECT "+columns+", created_at, doc FROM "+table+
		" WHERE id > $1::uuid AND doc IS NOT NULL ORDER BY id LIMIT $2", after, limit)
	if err != nil {
		return nil, fmt.Errorf("search: rows of %s: %w", table, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) {
		var (
			d                     T
			buyer, seller, status string
			at                    time.Time
			doc                   []byte
		)
		if err := r.Scan(&buyer, &seller, &status, &at, &doc); err != nil {
			return d, err
		}
		if err := json.Unmarshal(doc, &d); err != nil {
			return d, err
		}
		set(&d, buyer, seller, status, at.UTC())
		return d, nil
	})
	if err != nil {
		return nil, fmt.Errorf("search: rows of %s: %w", table, err)
	}
	return out, nil
}
