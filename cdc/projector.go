package cdc

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// Projector is the Sink that maintains the MongoDB documents and the Redis
// cache. It does not replay row images: for each transaction it collects
// the ids of the documents the changes touch and re-reads their current
// denormalized shape from Postgres. A document is therefore always a whole,
// current view, replays and restarts converge, and fan-out (a rename
// reaching every copy of the name) is a question of which ids to re-read.
type Projector struct {
	pg    *pgxpool.Pool
	reads *readstore.Store
	cache *cache.Cache
	rdb   redis.UniversalClient
	keys  consistency.Keys
	log   *slog.Logger
}

// NewProjector returns a Projector that re-reads Postgres through pg.
func NewProjector(pg *pgxpool.Pool, reads *readstore.Store, c *cache.Cache, rdb redis.UniversalClient, keys consistency.Keys, log *slog.Logger) *Projector {
	return &Projector{pg: pg, reads: reads, cache: c, rdb: rdb, keys: keys, log: log}
}

// affected is the set of documents a transaction touches.
type affected struct {
	users    map[uuid.UUID]struct{}
	allUsers bool // a TRUNCATE: only a full pass is safe
}

func (a *affected) addUser(s string, ok bool) {
	if !ok {
		return
	}
	if id, err := uuid.Parse(s); err == nil {
		a.users[id] = struct{}{}
	}
}

// collect maps row changes to the documents they change.
func collect(tx *Txn) affected {
	a := affected{users: map[uuid.UUID]struct{}{}}
	for i := range tx.Changes {
		c := &tx.Changes[i]
		if c.Op == OpTruncate {
			a.allUsers = true
			continue
		}
		switch c.Table {
		case "users":
			a.addUser(c.Text("id"))
		case "listings":
			// Listing counts are part of the seller's profile.
			a.addUser(c.Text("seller_id"))
			a.addUser(c.OldText("seller_id"))
		case "reviews":
			// The seller's rating is part of their profile.
			a.addUser(c.Text("seller_id"))
		}
	}
	return a
}

// Apply rebuilds every document tx touches, then evicts their cache
// entries, then announces tx.EndLSN. Only after all three may the reader
// acknowledge the transaction.
func (p *Projector) Apply(ctx context.Context, tx *Txn) error {
	a := collect(tx)
	lsn := uint64(tx.EndLSN)
	err := readVisible(ctx, p.pg, []uint32{tx.Xid}, func(q *sqlc.Queries) error {
		var ids []uuid.UUID
		if a.allUsers {
			var err error
			if ids, err = p.allUserIDs(ctx, q); err != nil {
				return err
			}
		} else {
			ids = make([]uuid.UUID, 0, len(a.users))
			for id := range a.users {
				ids = append(ids, id)
			}
		}
		return p.projectUsers(ctx, q, ids, lsn)
	})
	if err != nil {
		return err
	}
	if err := consistency.Publish(ctx, p.rdb, p.keys, lsn); err != nil {
		return fmt.Errorf("publish applied position: %w", err)
	}
	return nil
}

// Reached announces a position that needed no document changes.
func (p *Projector) Reached(ctx context.Context, lsn pglogrepl.LSN) error {
	return consistency.Publish(ctx, p.rdb, p.keys, uint64(lsn))
}

// projectBatch bounds one Postgres read and one round of Mongo writes.
const projectBatch = 200

func (p *Projector) projectUsers(ctx context.Context, q *sqlc.Queries, ids []uuid.UUID, lsn uint64) error {
	for len(ids) > 0 {
		n := min(len(ids), projectBatch)
		batch := ids[:n]
		ids = ids[n:]
		rows, err := q.ListUserProjections(ctx, batch)
		if err != nil {
			return fmt.Errorf("read users: %w", err)
		}
		docs := make([]readstore.User, 0, len(rows))
		found := make(map[uuid.UUID]bool, len(rows))
		for _, r := range rows {
			found[r.ID] = true
			docs = append(docs, readstore.User{
				ID:                 r.ID.String(),
				DisplayName:        r.DisplayName,
				Bio:                r.Bio,
				JoinedAt:           r.CreatedAt.UTC(),
				RatingAverage:      r.RatingAverage,
				RatingCount:        r.RatingCount,
				ActiveListingCount: r.ActiveListingCount,
				SoldCount:          r.SoldCount,
				LSN:                int64(lsn),
			})
		}
		var gone []string
		keys := make([]string, 0, len(batch))
		for _, id := range batch {
			keys = append(keys, p.cache.UserKey(id.String()))
			if !found[id] {
				gone = append(gone, id.String())
			}
		}
		if err := p.reads.PutUsers(ctx, docs); err != nil {
			return err
		}
		if err := p.reads.DeleteUsers(ctx, gone); err != nil {
			return fmt.Errorf("delete users: %w", err)
		}
		if err := p.cache.Evict(ctx, lsn, keys...); err != nil {
			return fmt.Errorf("evict users: %w", err)
		}
	}
	return nil
}

// allUserIDs lists every user in Postgres and every user document, so that
// a full pass also removes documents whose rows are gone.
func (p *Projector) allUserIDs(ctx context.Context, q *sqlc.Queries) ([]uuid.UUID, error) {
	seen := map[uuid.UUID]struct{}{}
	var ids []uuid.UUID
	after := uuid.Nil
	for {
		page, err := q.ListAllUserIDs(ctx, sqlc.ListAllUserIDsParams{After: after, Batch: 1000})
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		for _, id := range page {
			seen[id] = struct{}{}
			ids = append(ids, id)
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1]
	}
	err := p.reads.AllUsers(ctx, func(u readstore.User) error {
		if id, err := uuid.Parse(u.ID); err == nil {
			if _, ok := seen[id]; !ok {
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list user documents: %w", err)
	}
	return ids, nil
}
