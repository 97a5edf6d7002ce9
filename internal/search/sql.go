package search

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// The statements a search runs. Each is one statement: the page and the
// live generation's applied position read from one snapshot.

// pageColumns are what a result row carries, in Search's Scan order after
// the applied position.
const pageColumns = `p.id::text, p.lsn, p.status, p.version, p.seller_id::text, p.seller_name, p.seller_rating_average,
	p.seller_rating_count, p.title, p.description, p.category, p.condition, p.currency, p.price, p.attributes, p.media,
	p.created_at, p.updated_at, p.rank, p.b_at, p.b_id`

// sql builds the statement of a validated query and its arguments.
func (s *Store) sql(p plan) (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	q := p.q
	where := []string{"l.status <> ''"}
	if q.Status != StatusAny {
		where[0] = "l.status = " + arg(q.Status)
	}
	tsq := ""
	if q.Text != "" {
		tsq = "plainto_tsquery(" + arg(s.tsconfig) + "::regconfig, " + arg(q.Text) + ")"
		where = append(where, "l.tsv @@ "+tsq)
	}
	if q.Category != "" {
		where = append(where, "l.category = "+arg(q.Category))
	}
	if q.Condition != "" {
		where = append(where, "l.condition = "+arg(q.Condition))
	}
	if q.SellerID != "" {
		where = append(where, "l.seller_id = "+arg(q.SellerID)+"::uuid")
	}
	if q.Currency != "" {
		where = append(where, "l.currency = "+arg(q.Currency))
	}
	if q.MinPrice != nil {
		where = append(where, "l.price >= "+arg(*q.MinPrice)+"::bigint")
	}
	if q.MaxPrice != nil {
		where = append(where, "l.price <= "+arg(*q.MaxPrice)+"::bigint")
	}
	if len(q.Attributes) > 0 {
		b, _ := json.Marshal(q.Attributes)
		where = append(where, "l.attributes @> "+arg(string(b))+"::jsonb")
	}
	c := p.cursor
	limit := strconv.Itoa(p.limit + 1)
	outer := func(inner, order string) string {
		return `SELECT g.applied_lsn, ` + pageColumns + `
FROM search_generations g LEFT JOIN LATERAL (` + inner + `) p ON true
WHERE g.state = 'live' ORDER BY ` + order
	}
	var order, keyset string
	switch p.sort {
	case SortNewest:
		order = "created_at DESC, id DESC"
		if c != nil {
			keyset = "(l.created_at, l.id) < (" + arg(time.UnixMicro(c.At).UTC()) + "::timestamptz, " + arg(c.ID) + "::uuid)"
		}
	case SortPriceAsc:
		order = "price, id"
		if c != nil {
			keyset = "(l.price, l.id) > (" + arg(c.Price) + "::bigint, " + arg(c.ID) + "::uuid)"
		}
	case SortPriceDesc:
		order = "price DESC, id DESC"
		if c != nil {
			keyset = "(l.price, l.id) < (" + arg(c.Price) + "::bigint, " + arg(c.ID) + "::uuid)"
		}
	case SortRelevance:
		return s.relevanceSQL(p, where, tsq, arg, outer), args
	}
	if keyset != "" {
		where = append(where, keyset)
	}
	inner := `SELECT l.*, NULL::real AS rank, NULL::timestamptz AS b_at, NULL::text AS b_id
	FROM search_listings l WHERE ` + strings.Join(where, " AND ") + `
	ORDER BY ` + prefixed("l.", order) + ` LIMIT ` + limit
	return outer(inner, prefixed("p.", order)), args
}

// relevanceSQL ranks the newest RelevanceCandidates matches (on later
// pages: the matches at or after the first page's boundary) and pages
// through them by (rank, id).
func (s *Store) relevanceSQL(p plan, where []string, tsq string, arg func(any) string, outer func(string, string) string) string {
	c := p.cursor
	capClause := " LIMIT " + strconv.Itoa(s.opts.RelevanceCandidates)
	if c != nil {
		where = append(where, "(l.created_at, l.id) >= ("+arg(time.UnixMicro(c.Boundary.At).UTC())+"::timestamptz, "+arg(c.Boundary.ID)+"::uuid)")
		capClause = ""
	}
	// An exact title match outranks any partial one.
	rank := "(ts_rank(l.tsv, " + tsq + ") + CASE WHEN lower(l.title) = lower(" + arg(p.q.Text) + ") THEN 1 ELSE 0 END)::real"
	keyset := "true"
	if c != nil {
		keyset = "(c.rank, c.id) < (" + arg(c.Rank) + "::real, " + arg(c.ID) + "::uuid)"
	}
	return `WITH cand AS MATERIALIZED (
	SELECT l.*, ` + rank + ` AS rank FROM search_listings l
	WHERE ` + strings.Join(where, " AND ") + `
	ORDER BY l.created_at DESC, l.id DESC` + capClause + `
), b AS (SELECT created_at, id FROM cand ORDER BY created_at, id LIMIT 1)
` + outer(`SELECT c.*, (SELECT created_at FROM b) AS b_at, (SELECT id::text FROM b) AS b_id
	FROM cand c WHERE `+keyset+` ORDER BY c.rank DESC, c.id DESC LIMIT `+strconv.Itoa(p.limit+1), "p.rank DESC, p.id DESC")
}

// prefixed qualifies each column of an ORDER BY list.
func prefixed(alias, order string) string {
	parts := strings.Split(order, ", ")
	for i, o := range parts {
		parts[i] = alias + o
	}
	return strings.Join(parts, ", ")
}
