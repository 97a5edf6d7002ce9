package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/internal/readstore"
)

// Fixtures go straight into the suite's database with COPY. Going through
// SignUp and CreateListing would spend the setup on argon2 and on RPCs that
// no figure measures: 30k listings load in about a second this way.

// benchUser is a user with an open session.
type benchUser struct {
	id    uuid.UUID
	token string // the bearer token; Postgres holds only its SHA-256
}

// lockedPassword is no PHC string, so no password ever verifies against it:
// fixture users exist only through the sessions inserted for them.
const lockedPassword = "!bench-fixture"

// insertUsers creates n users named after role, each with a session.
func insertUsers(ctx context.Context, pg *pgxpool.Pool, role string, n int) ([]benchUser, error) {
	users := make([]benchUser, n)
	userRows := make([][]any, n)
	credRows := make([][]any, n)
	sessionRows := make([][]any, n)
	expires := time.Now().Add(24 * time.Hour)
	for i := range users {
		id := uuid.Must(uuid.NewV7())
		token, hash := newSessionToken()
		users[i] = benchUser{id: id, token: token}
		userRows[i] = []any{id, fmt.Sprintf("bench %s %d", role, i)}
		credRows[i] = []any{id, fmt.Sprintf("%s-%d-%s@bench.invalid", role, i, id), lockedPassword}
		sessionRows[i] = []any{hash, id, expires}
	}
	copies := []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"users", []string{"id", "display_name"}, userRows},
		{"user_credentials", []string{"user_id", "email", "password_hash"}, credRows},
		{"sessions", []string{"token_hash", "user_id", "expires_at"}, sessionRows},
	}
	for _, c := range copies {
		if _, err := pg.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return nil, fmt.Errorf("insert %s %s: %w", role, c.table, err)
		}
	}
	return users, nil
}

// newSessionToken mirrors internal/app: 32 random bytes, base64url, and
// the SHA-256 of that string as the stored key.
func newSessionToken() (token string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(token))
	return token, h[:]
}

// insertListings creates n AVAILABLE listings spread round-robin over the
// sellers, and returns their ids in insertion order.
func insertListings(ctx context.Context, pg *pgxpool.Pool, sellers []benchUser, n int) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, n)
	rows := make([][]any, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		rows[i] = []any{
			ids[i], sellers[i%len(sellers)].id,
			fmt.Sprintf("Bench item %d", i), "A listing made by swapmeet-bench.",
			"bench", "GOOD", "EUR", int64(1000 + i%9000),
		}
	}
	cols := []string{"id", "seller_id", "title", "description", "category", "condition", "price_currency", "price_minor"}
	if _, err := pg.CopyFrom(ctx, pgx.Identifier{"listings"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return nil, fmt.Errorf("insert listings: %w", err)
	}
	return ids, nil
}

// analyze refreshes planner statistics after a bulk load, so that plans are
// settled and autovacuum's analyze does not kick in during a measurement.
func analyze(ctx context.Context, pg *pgxpool.Pool) error {
	_, err := pg.Exec(ctx, "ANALYZE")
	return err
}

// listingDocs reads the listings with ids after after, in id order, at most
// limit of them (0: all), shaped as the projector shapes them (the
// fixtures have no media and no reviews).
func listingDocs(ctx context.Context, pg *pgxpool.Pool, after uuid.UUID, limit int) ([]readstore.Listing, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := pg.Query(ctx, listingDocsQuery+`
		WHERE l.id > $1 ORDER BY l.id LIMIT $2`, after, lim)
	if err != nil {
		return nil, err
	}
	return scanListingDocs(rows)
}

// listingDocsQuery selects what scanListingDocs reads.
const listingDocsQuery = `
		SELECT l.id, l.seller_id, u.display_name, l.title, l.description, l.category, l.condition,
		       l.price_currency, l.price_minor, l.attributes, l.status, l.version, l.created_at, l.updated_at
		FROM listings l JOIN users u ON u.id = l.seller_id`

// scanListingDocs shapes the rows of listingDocsQuery as the projector
// shapes listings, and closes rows.
func scanListingDocs(rows pgx.Rows) ([]readstore.Listing, error) {
	defer rows.Close()
	var docs []readstore.Listing
	for rows.Next() {
		var id, seller uuid.UUID
		var name string
		var d readstore.Listing
		var attrs []byte
		if err := rows.Scan(&id, &seller, &name, &d.Title, &d.Description, &d.Category, &d.Condition,
			&d.Price.Currency, &d.Price.Minor, &attrs, &d.Status, &d.Version, &d.CreatedAt, &d.UpdatedAt); err != nil {
			return nil, err
		}
		d.ID = id.String()
		d.Seller = readstore.UserSummary{ID: seller.String(), DisplayName: name}
		if err := json.Unmarshal(attrs, &d.Attributes); err != nil {
			return nil, fmt.Errorf("listing %s attributes: %w", id, err)
		}
		for k, v := range d.Attributes {
			d.AttributePairs = append(d.AttributePairs, k+"="+v)
		}
		slices.Sort(d.AttributePairs)
		d.Media = []readstore.Media{}
		d.Keywords = readstore.Keywords(d.Title, d.Description)
		d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC().Truncate(time.Millisecond), d.UpdatedAt.UTC().Truncate(time.Millisecond)
		docs = append(docs, d)
	}
	return docs, rows.Err()
}
