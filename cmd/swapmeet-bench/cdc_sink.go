package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	mongooptions "go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

const sinkFigure = "CDC real sink throughput"

const (
	// sinkDrain is about how long the measured drain should take: its
	// backlog is sized from the reference rate.
	sinkDrain = 8 * time.Second
	// sinkPutBatch is how many documents the reference hands to one Put,
	// as the projector does (cdc's projectBatch).
	sinkPutBatch = 200
	// verifySample is how many listing documents are checked afterwards.
	verifySample = 50
)

// measureSink compares two ways of writing listing documents into the same
// FerretDB, one after the other, each into a collection of cdcListings
// existing documents with the read side's indexes:
//
//   - reference: readstore.Model.Put, the projector's own write path, with
//     its WriteConcurrency and batch size, replacing existing listing
//     documents (with a new price and version) in a scratch database;
//   - measured: the real projection.Projector behind a wal.Reader, draining a
//     backlog of one-row listing updates (one transaction each, each
//     listing once). For each batch it re-reads Postgres, replaces the
//     listing documents and their sellers' profiles (a listing's status
//     counts there), tombstones their Redis keys, bumps the search
//     page epoch and publishes the applied LSN.
//
// A document is one listing document replaced in Mongo, in both runs. The
// projector's seller-profile upserts are extra work that is not counted:
// they hit a collection of cdcSellers documents, and FerretDB 1.24 finds
// a document by _id with a sequential scan, so counting them one for one
// would flatter the sink.
func measureSink(ctx context.Context, e *env, o options) (row, error) {
	if err := e.Reads.EnsureIndexes(ctx); err != nil {
		return row{}, fmt.Errorf("indexes: %w", err)
	}
	start := time.Now()
	listings, err := listingFixtures(ctx, e, cdcSellers, cdcListings)
	if err != nil {
		return row{}, err
	}

	// The reference's scratch database: same documents, same indexes.
	refDB := e.MongoDB + "_ref"
	ref := readstore.New(e.Mongo.Database(refDB))
	ref.WriteConcurrency = e.Reads.WriteConcurrency
	e.onClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Mongo.Database(refDB).Drop(ctx)
		return nil
	})
	if err := ref.EnsureIndexes(ctx); err != nil {
		return row{}, fmt.Errorf("reference indexes: %w", err)
	}
	if err := seedDocuments(ctx, ref, listings.docs, nil); err != nil {
		return row{}, err
	}
	// From here on, every commit is in the slot's backlog.
	if err := createSlot(ctx, e, e.Slot); err != nil {
		return row{}, err
	}
	progress("cdc sink: fixtures: %d sellers, %d listings in Postgres and as documents in both Mongo databases, in %s",
		cdcSellers, cdcListings, time.Since(start).Round(time.Millisecond))

	refFor := min(o.duration, sinkDrain)
	progress("cdc sink: reference: listing upserts straight into FerretDB, %d at a time, for up to %s", ref.WriteConcurrency, refFor)
	// Each document once, with a new price and version.
	refN, refTook, err := putListings(ctx, ref, listings.docs, refFor, false, func(doc *readstore.Listing, now time.Time) {
		doc.Price.Minor++
		doc.Version++
		doc.UpdatedAt, doc.LSN = now, 1
	})
	if err != nil {
		return row{}, err
	}
	refRate := perSecond(int64(refN), refTook)
	progress("cdc sink: reference: %d upserts in %s: %.0f docs/s", refN, refTook.Round(time.Millisecond), refRate)

	n := min(cdcListings, max(100, int(refRate*sinkDrain.Seconds())))
	conn, err := backlogConn(ctx, e)
	if err != nil {
		return row{}, err
	}
	err = updateListingsOneByOne(ctx, conn, n)
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return row{}, err
	}

	progress("cdc sink: the projector drains a backlog of %d one-row listing updates", n)
	sink := newDrainSink(e.Projector(), int64(n))
	var sellerDocs atomic.Int64
	sink.count = func(c *wal.Change, seen map[string]bool) int {
		l, s := listingDocuments(c, seen)
		sellerDocs.Add(int64(s))
		return l
	}
	took, err := drain(ctx, e, sink, "cdc sink", 5*time.Minute)
	if err != nil {
		return row{}, err
	}
	listingDocs := sink.docs.Load()
	rate := perSecond(listingDocs, took)
	progress("cdc sink: %d transactions in %d batches in %s: %d listing documents (%.0f/s), plus %d seller profiles",
		sink.txns.Load(), sink.batches.Load(), took.Round(time.Millisecond), listingDocs, rate, sellerDocs.Load())

	if err := verifyListingVersions(ctx, e.Reads, e.PG); err != nil {
		return row{}, err
	}
	return atLeast(fmt.Sprintf("%s (listing docs, %dk in collection)", sinkFigure, cdcListings/1000),
		fmt.Sprintf("%.0f docs/s (+%d seller upserts, uncounted)", rate, sellerDocs.Load()),
		fmt.Sprintf("FerretDB raw upserts %.0f docs/s", refRate), rate/refRate, sinkMinRatio), nil
}

// listingDocuments counts the documents the projector writes for a
// listing change that a batch has not seen yet: each listing once, and
// each seller profile once.
func listingDocuments(c *wal.Change, seen map[string]bool) (listings, sellers int) {
	if c.Table != "listings" {
		return 0, 0
	}
	mark := func(key string, ok bool) int {
		if !ok || seen[key] {
			return 0
		}
		seen[key] = true
		return 1
	}
	id, ok := c.Text("id")
	listings = mark("l:"+id, ok)
	s, ok := c.Text("seller_id")
	sellers = mark("s:"+s, ok)
	s, ok = c.OldText("seller_id")
	sellers += mark("s:"+s, ok)
	return listings, sellers
}

// putListings replaces existing listing documents with Put, in batches of
// sinkPutBatch as the projector hands them over, until d has passed: each
// document once, or with cycle round and round. edit makes each write new
// to the store (now is the batch's time).
func putListings(ctx context.Context, s *readstore.Model, docs []readstore.Listing, d time.Duration, cycle bool, edit func(doc *readstore.Listing, now time.Time)) (int, time.Duration, error) {
	start := time.Now()
	n := 0
	for i := 0; time.Since(start) < d; i += sinkPutBatch {
		if i >= len(docs) {
			if !cycle {
				break
			}
			i = 0
		}
		chunk := docs[i:min(i+sinkPutBatch, len(docs))]
		now := time.Now().UTC().Truncate(time.Millisecond)
		ids := make([]string, len(chunk))
		put := make([]any, len(chunk))
		for k, doc := range chunk {
			edit(&doc, now)
			ids[k], put[k] = doc.ID, doc
		}
		if err := s.Put(ctx, readstore.Listings, ids, put); err != nil {
			return n, time.Since(start), fmt.Errorf("put listing documents: %w", err)
		}
		n += len(chunk)
	}
	return n, time.Since(start), nil
}

// listingSet is a fixture: listings in Postgres and their documents.
type listingSet struct {
	docs    []readstore.Listing
	sellers []readstore.User
}

// listingFixtures inserts sellers and listings (with attributes, like real
// ones), and builds the documents the projector makes of them by reading
// the rows back. The documents are then put in the read store, so that
// later writes replace existing documents, as they do in production.
func listingFixtures(ctx context.Context, e *env, nSellers, nListings int) (listingSet, error) {
	sellers, err := insertUsers(ctx, e.PG, "seller", nSellers)
	if err != nil {
		return listingSet{}, err
	}
	if _, err := insertListings(ctx, e.PG, sellers, nListings); err != nil {
		return listingSet{}, err
	}
	_, err = e.PG.Exec(ctx, `
		UPDATE listings SET attributes = jsonb_build_object(
			'color', (ARRAY['red', 'blue', 'green'])[1 + price_minor % 3],
			'size', (ARRAY['S', 'M', 'L', 'XL'])[1 + price_minor % 4],
			'brand', 'Brand ' || price_minor % 50)`)
	if err != nil {
		return listingSet{}, fmt.Errorf("listing attributes: %w", err)
	}
	if err := analyze(ctx, e.PG); err != nil {
		return listingSet{}, fmt.Errorf("analyze: %w", err)
	}
	set, err := readListingDocs(ctx, e.PG)
	if err != nil {
		return listingSet{}, err
	}
	return set, seedDocuments(ctx, e.Reads, set.docs, set.sellers)
}

// readListingDocs shapes every listing and user row as the projector would
// (no media, no reviews in these fixtures).
func readListingDocs(ctx context.Context, pg *pgxpool.Pool) (listingSet, error) {
	var set listingSet
	var err error
	if set.docs, err = listingDocs(ctx, pg, uuid.Nil, 0); err != nil {
		return set, fmt.Errorf("read listings: %w", err)
	}
	urows, err := pg.Query(ctx, `
		SELECT u.id, u.display_name, u.bio, u.created_at,
		       (SELECT count(*) FROM listings l WHERE l.seller_id = u.id AND l.status = 'AVAILABLE')::int4
		FROM users u ORDER BY u.id`)
	if err != nil {
		return set, fmt.Errorf("read users: %w", err)
	}
	defer urows.Close()
	for urows.Next() {
		var id uuid.UUID
		var u readstore.User
		if err := urows.Scan(&id, &u.DisplayName, &u.Bio, &u.JoinedAt, &u.ActiveListingCount); err != nil {
			return set, fmt.Errorf("read users: %w", err)
		}
		u.ID = id.String()
		u.JoinedAt = u.JoinedAt.UTC().Truncate(time.Millisecond)
		set.sellers = append(set.sellers, u)
	}
	return set, urows.Err()
}

// seedDocuments bulk-inserts documents that do not exist yet (insertMany
// of new documents is FerretDB's fast path).
func seedDocuments(ctx context.Context, s *readstore.Model, listings []readstore.Listing, users []readstore.User) error {
	insert := func(coll string, docs []any) error {
		for len(docs) > 0 {
			n := min(len(docs), 500)
			ictx, cancel := context.WithTimeout(ctx, time.Minute)
			_, err := s.DB().Collection(coll).InsertMany(ictx, docs[:n], mongooptions.InsertMany().SetOrdered(false))
			cancel()
			if err != nil {
				return fmt.Errorf("seed %s documents: %w", coll, err)
			}
			docs = docs[n:]
		}
		return nil
	}
	ls := make([]any, len(listings))
	for i, d := range listings {
		ls[i] = d
	}
	us := make([]any, len(users))
	for i, d := range users {
		us[i] = d
	}
	if err := insert(readstore.Listings, ls); err != nil {
		return err
	}
	return insert(readstore.Users, us)
}

// verifyListingVersions checks a sample of listing documents against
// Postgres: after the drain, each must hold the row's current version.
func verifyListingVersions(ctx context.Context, s *readstore.Model, pg *pgxpool.Pool) error {
	type want struct {
		ID      string
		Version int64
	}
	rows, _ := pg.Query(ctx, `SELECT id::text, version FROM listings WHERE version > 1 ORDER BY random() LIMIT $1`, verifySample)
	sample, err := pgx.CollectRows(rows, pgx.RowToStructByPos[want])
	if err != nil {
		return fmt.Errorf("sample listings: %w", err)
	}
	if len(sample) == 0 {
		return fmt.Errorf("no updated listing to check")
	}
	for _, w := range sample {
		got, err := readstore.Find[readstore.Listing](ctx, s, readstore.Listings, w.ID)
		if err != nil {
			return fmt.Errorf("check listing %s in mongo: %w", w.ID, err)
		}
		if got.Version != w.Version || got.LSN == 0 {
			return fmt.Errorf("listing %s in mongo has version %d and lsn %d after the drain; postgres has version %d",
				w.ID, got.Version, got.LSN, w.Version)
		}
	}
	return nil
}
