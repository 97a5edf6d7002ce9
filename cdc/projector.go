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
// cache. It does not replay row images: for each batch of transactions it
// collects the ids of the documents the changes touch and re-reads their
// current denormalized shape from Postgres. A document is therefore always
// a whole, current view; replays and restarts converge; and fan-out (a
// rename reaching every copy of the name) is a question of which ids to
// re-read.
type Projector struct {
	// targets, if set, maps the collections to maintain to the physical
	// collections to write (a generation being built); others are skipped.
	// When nil, every collection is written under its logical name, which
	// the read store resolves through the live pointer.
	targets map[string]string
	// catchUp marks a projector made by Into: it writes the shadows only,
	// never the live cache, page generation or applied position.
	catchUp bool

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

// idSet maps document ids to the end LSN of the last transaction that
// touched them. A document is stamped with that LSN, not the batch's, so
// that its stamp does not depend on how transactions were batched: a
// replay writes the same bytes.
type idSet map[uuid.UUID]int64

func (s idSet) add(v string, ok bool, lsn int64) {
	if !ok {
		return
	}
	if id, err := uuid.Parse(v); err == nil {
		s.put(id, lsn)
	}
}

func (s idSet) put(id uuid.UUID, lsn int64) { s[id] = max(s[id], lsn) }

func (s idSet) list() []uuid.UUID {
	out := make([]uuid.UUID, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	return out
}

// affected is what a batch of transactions touches.
type affected struct {
	docs          map[string]idSet // collection → document ids
	summaries     idSet            // users whose name or rating other documents embed
	mediaListings idSet            // listings whose images changed: orders show a thumbnail
	full          bool             // a TRUNCATE: only a full pass is safe
}

func collect(txs []*Txn) *affected {
	a := &affected{docs: map[string]idSet{}, summaries: idSet{}, mediaListings: idSet{}}
	for _, c := range readstore.Collections {
		a.docs[c] = idSet{}
	}
	for _, tx := range txs {
		lsn := int64(tx.EndLSN)
		for i := range tx.Changes {
			c := &tx.Changes[i]
			if c.Op == OpTruncate {
				a.full = true
				continue
			}
			// put records the id in column col of the new (else old) row.
			put := func(s idSet, col string) {
				v, ok := c.Text(col)
				s.add(v, ok, lsn)
			}
			switch c.Table {
			case "users":
				put(a.docs[readstore.Users], "id")
				put(a.summaries, "id")
			case "listings":
				put(a.docs[readstore.Listings], "id")
				// Listing counts are part of the seller's profile, but an
				// edit that keeps status and seller leaves them alone.
				if c.Op == OpUpdate && unchanged(c, "status") && unchanged(c, "seller_id") {
					continue
				}
				put(a.docs[readstore.Users], "seller_id")
				v, ok := c.OldText("seller_id")
				a.docs[readstore.Users].add(v, ok, lsn)
			case "listing_media":
				put(a.docs[readstore.Listings], "listing_id")
				put(a.mediaListings, "listing_id")
			case "orders":
				put(a.docs[readstore.Orders], "id")
			case "order_items":
				put(a.docs[readstore.Orders], "order_id")
			case "reviews":
				put(a.docs[readstore.Reviews], "id")
				// The seller's rating is in their profile and in every
				// document that embeds their summary.
				put(a.docs[readstore.Users], "seller_id")
				put(a.summaries, "seller_id")
			}
		}
	}
	return a
}

// unchanged reports whether an update kept a column's value. Without the
// old row (no REPLICA IDENTITY FULL) it cannot tell, and says no.
func unchanged(c *Change, column string) bool {
	old, ok1 := c.OldText(column)
	cur, ok2 := c.NewText(column)
	return ok1 && ok2 && old == cur
}

// Apply rebuilds every document the batch touches, then tombstones their
// cache entries, then announces the batch's end LSN. Only after all three
// may the reader acknowledge it.
func (p *Projector) Apply(ctx context.Context, txs []*Txn) error {
	if len(txs) == 0 {
		return nil
	}
	a := collect(txs)
	lsn := uint64(txs[len(txs)-1].EndLSN)
	xids := make([]uint32, len(txs))
	for i, tx := range txs {
		xids[i] = tx.Xid
	}
	// Read everything inside the snapshot, write only after it is closed:
	// a slow read store must not hold a Postgres transaction open.
	var writes []write
	collectWrite := func(w write) error { writes = append(writes, w); return nil }
	err := readVisible(ctx, p.pg, xids, func(q *sqlc.Queries) error {
		if err := p.expand(ctx, q, a, int64(lsn)); err != nil {
			return err
		}
		for _, proj := range projections {
			if err := p.project(ctx, q, proj, a.docs[proj.collection], collectWrite); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, w := range writes {
		if err := p.write(ctx, w); err != nil {
			return err
		}
	}
	if p.catchUp {
		return nil
	}
	if len(a.docs[readstore.Listings]) > 0 {
		if err := p.cache.BumpGeneration(ctx, readstore.Listings); err != nil {
			return fmt.Errorf("bump listings generation: %w", err)
		}
	}
	if err := consistency.Publish(ctx, p.rdb, p.keys, lsn); err != nil {
		return fmt.Errorf("publish applied position: %w", err)
	}
	return nil
}

// Resync projects every document from the current state of Postgres, as
// if every table had been truncated and refilled.
func (p *Projector) Resync(ctx context.Context) error {
	a := collect(nil)
	a.full = true
	return readVisible(ctx, p.pg, nil, func(q *sqlc.Queries) error {
		lsn, err := q.CurrentLSN(ctx)
		if err != nil {
			return err
		}
		if err := p.expand(ctx, q, a, lsn); err != nil {
			return err
		}
		// A full pass writes as it reads: holding every document of
		// every collection in memory is not an option.
		for _, proj := range projections {
			if err := p.project(ctx, q, proj, a.docs[proj.collection], func(w write) error { return p.write(ctx, w) }); err != nil {
				return err
			}
		}
		return p.cache.BumpGeneration(ctx, readstore.Listings)
	})
}

// expand adds the documents that embed what changed. A fanned-out
// document takes the LSN of the change it copies; for a full pass, every
// document takes the batch's end.
func (p *Projector) expand(ctx context.Context, q *sqlc.Queries, a *affected, end int64) error {
	if a.full {
		for _, proj := range projections {
			ids, err := p.allIDs(ctx, q, proj)
			if err != nil {
				return err
			}
			for _, id := range ids {
				a.docs[proj.collection].put(id, end)
			}
		}
		return nil
	}
	// One query per changed user keeps the LSN of each copy exact; the
	// sets are small (a batch's renames and reviewed sellers).
	for user, lsn := range a.summaries {
		fanOut := []struct {
			collection string
			find       func(context.Context, []uuid.UUID) ([]uuid.UUID, error)
		}{
			{readstore.Listings, q.ListListingIDsBySellers},
			{readstore.Orders, q.ListOrderIDsByParties},
			{readstore.Reviews, q.ListReviewIDsByAuthors},
		}
		for _, f := range fanOut {
			ids, err := f.find(ctx, []uuid.UUID{user})
			if err != nil {
				return fmt.Errorf("fan out to %s: %w", f.collection, err)
			}
			for _, id := range ids {
				a.docs[f.collection].put(id, lsn)
			}
		}
	}
	for listing, lsn := range a.mediaListings {
		ids, err := q.ListOrderIDsByListings(ctx, []uuid.UUID{listing})
		if err != nil {
			return fmt.Errorf("fan out to orders: %w", err)
		}
		for _, id := range ids {
			a.docs[readstore.Orders].put(id, lsn)
		}
	}
	return nil
}

// projectBatch bounds one Postgres read and one round of Mongo writes.
const projectBatch = 200

// write is one batch of rebuilt documents bound for one collection.
type write struct {
	collection string // physical
	ids        []string
	docs       []any
	gone       []string // ids whose rows no longer exist
	evictions  []cache.Eviction
}

// project rebuilds the documents in set, page by page, and hands each
// page's writes to emit: replacements for documents that exist, deletions
// for those whose rows are gone, and tombstones for their cache entries.
func (p *Projector) project(ctx context.Context, q *sqlc.Queries, proj projection, set idSet, emit func(write) error) error {
	physical := p.target(proj.collection)
	if physical == "" {
		return nil
	}
	ids := set.list()
	for len(ids) > 0 {
		n := min(len(ids), projectBatch)
		batch := ids[:n]
		ids = ids[n:]
		docs, err := proj.build(ctx, q, batch, set)
		if err != nil {
			return err
		}
		w := write{collection: physical}
		for _, id := range batch {
			s := id.String()
			if k := p.cache.DocumentKey(proj.collection, s); k != "" {
				w.evictions = append(w.evictions, cache.Eviction{Key: k, LSN: uint64(set[id])})
			}
			if d, ok := docs[id]; ok {
				w.ids = append(w.ids, s)
				w.docs = append(w.docs, d)
			} else {
				w.gone = append(w.gone, s)
			}
		}
		if err := emit(w); err != nil {
			return err
		}
	}
	return nil
}

// write applies one page: Mongo first, then the tombstones, so that a
// reader who misses after the tombstone finds the new document.
func (p *Projector) write(ctx context.Context, w write) error {
	if err := p.reads.Put(ctx, w.collection, w.ids, w.docs); err != nil {
		return err
	}
	if err := p.reads.Delete(ctx, w.collection, w.gone); err != nil {
		return err
	}
	if p.catchUp {
		return nil
	}
	if err := p.cache.Evict(ctx, w.evictions...); err != nil {
		return fmt.Errorf("evict %s: %w", w.collection, err)
	}
	return nil
}

// allIDs lists every row of a projection's source and every document it
// has, so that a full pass also removes documents whose rows are gone.
func (p *Projector) allIDs(ctx context.Context, q *sqlc.Queries, proj projection) ([]uuid.UUID, error) {
	seen := idSet{}
	after := uuid.Nil
	for {
		page, err := proj.all(ctx, q, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", proj.collection, err)
		}
		for _, id := range page {
			seen[id] = 0
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1]
	}
	docIDs, err := p.reads.IDs(ctx, p.target(proj.collection))
	if err != nil {
		return nil, err
	}
	for _, s := range docIDs {
		seen.add(s, true, 0)
	}
	return seen.list(), nil
}

// Into returns a projector that maintains only the given collections,
// writing them to the given physical collections. It is the catch-up of a
// rebuild: it touches nothing live. No cache tombstones, no page
// generation bump and no applied position: what it writes is not what
// readers see until the switch, so a token must not count as reached.
func (p *Projector) Into(targets map[string]string) *Projector {
	c := *p
	c.targets = targets
	c.catchUp = true
	return &c
}

func (p *Projector) target(collection string) string {
	if p.targets == nil {
		return collection
	}
	return p.targets[collection]
}

// Reached announces a position that needed no document changes.
func (p *Projector) Reached(ctx context.Context, lsn pglogrepl.LSN) error {
	if p.catchUp {
		return nil
	}
	return consistency.Publish(ctx, p.rdb, p.keys, uint64(lsn))
}
