// Package readstore owns the MongoDB read model: the denormalized documents
// the CDC writes and the queries read. Every document carries the WAL
// position (lsn) of the last commit it reflects.
//
// It keeps to what MongoDB and FerretDB both serve (find, sort, limit,
// replace, delete, simple aggregation), and gives every call a deadline.
package readstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"golang.org/x/sync/errgroup"

	"github.com/swapmeet/swapmeet/internal/roundtrip"
)

// ErrNotFound means the read store has no such document.
var ErrNotFound = errors.New("document not found")

// Model is the read model in one Mongo database.
type Model struct {
	db *mongo.Database
	// OpTimeout bounds every call, so that a hung server fails fast
	// instead of piling up requests.
	OpTimeout time.Duration
	// WriteConcurrency is how many writes (upserts or bulks) every Put of
	// the Model has in flight at once between them, so that a lone page
	// uses them all and several pages share them. Set it before the first
	// Put.
	WriteConcurrency int
	// BulkSize is how many documents Put sends in one bulk write; 1 (or
	// less) sends each in its own upsert.
	BulkSize int

	pointer atomic.Pointer[Pointer] // the live pointer: logical → physical names

	slotsOnce sync.Once
	slots     chan struct{} // WriteConcurrency of them
}

// New returns a Model over db.
func New(db *mongo.Database) *Model {
	return &Model{db: db, OpTimeout: 5 * time.Second, WriteConcurrency: DefaultWriteConcurrency, BulkSize: DefaultBulkSize}
}

// Connect dials uri and returns the client (close it with Disconnect).
// Writes use writeConcern (see ParseWriteConcern); "" leaves the URI's or
// the server's default.
func Connect(ctx context.Context, uri, writeConcern string) (*mongo.Client, error) {
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetMonitor(roundtrip.Monitor())
	if writeConcern != "" {
		wc, err := ParseWriteConcern(writeConcern)
		if err != nil {
			return nil, err
		}
		opts.SetWriteConcern(wc)
	}
	c, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo connect: %w", err)
	}
	return c, nil
}

// DefaultWriteConcern is what projections are written with unless
// configured otherwise: acknowledged by a majority of a replica set, so
// that a failover cannot roll back a write the CDC has acknowledged to
// Postgres. On a single server (or FerretDB) it is the same as w:1.
const DefaultWriteConcern = "majority"

// ParseWriteConcern reads "majority" or a number of members (at least 1:
// an unacknowledged write could be lost after the CDC had acknowledged
// its WAL position). Writes are journaled either way.
func ParseWriteConcern(s string) (*writeconcern.WriteConcern, error) {
	if s == "majority" {
		return &writeconcern.WriteConcern{W: "majority", Journal: ptrTo(true)}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("mongo write concern %q: want majority or a number of members of at least 1", s)
	}
	return &writeconcern.WriteConcern{W: n, Journal: ptrTo(true)}, nil
}

func ptrTo[T any](v T) *T { return &v }

// Ping checks that the server answers.
func (s *Model) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	return classify(s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err())
}

// DB exposes the database to tools and tests.
func (s *Model) DB() *mongo.Database { return s.db }

// coll resolves a logical collection name through the pointer; a physical
// name (a generation being built) resolves to itself.
func (s *Model) coll(name string) *mongo.Collection { return s.db.Collection(s.Physical(name)) }

// FindRaw returns one document as stored, ready to cache.
func (s *Model) FindRaw(ctx context.Context, collection, id string) (bson.Raw, error) {
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	raw, err := s.coll(collection).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, classify(fmt.Errorf("find %s %s: %w", collection, id, err))
	}
	return raw, nil
}

// Load returns a loader of one document for the read path
// (cache.ReadThrough): the document decoded, as stored, and the lsn it
// carries.
func Load[T any](s *Model, collection, id string) func(context.Context) (T, []byte, uint64, error) {
	return func(ctx context.Context) (T, []byte, uint64, error) {
		var zero T
		raw, err := s.FindRaw(ctx, collection, id)
		if err != nil {
			return zero, nil, 0, err
		}
		d, err := Decode[T](raw)
		if err != nil {
			return zero, nil, 0, fmt.Errorf("decode %s %s: %w", collection, id, err)
		}
		return d, raw, LSNOf(raw), nil
	}
}

// Decode decodes a stored or cached document (or a ListingPage) into one
// of the document types.
func Decode[T any](raw []byte) (T, error) {
	var d T
	err := bson.Unmarshal(raw, &d)
	return d, err
}

// Encode encodes a document (or a ListingPage) as the caches keep it.
func Encode(v any) ([]byte, error) { return bson.Marshal(v) }

// Find returns one document, decoded.
func Find[T any](ctx context.Context, s *Model, collection, id string) (T, error) {
	raw, err := s.FindRaw(ctx, collection, id)
	if err != nil {
		var zero T
		return zero, err
	}
	return Decode[T](raw)
}

// LSNOf reads the lsn field of a raw document.
func LSNOf(raw bson.Raw) uint64 {
	v, err := raw.LookupErr("lsn")
	if err != nil {
		return 0
	}
	n, _ := v.AsInt64OK()
	return uint64(n)
}

// Stamped is a document that carries the WAL position of the last commit
// it reflects.
type Stamped interface{ Stamp() int64 }

// DefaultBulkSize is how many documents Put sends in one bulk write
// unless configured otherwise: 1, single upserts, which FerretDB serves
// best and safely. FerretDB 1.x keeps one backend connection per
// statement of a bulk until the bulk ends, and takes another for each
// write: bulks in flight that need more than its pool (50 connections)
// between them wait for each other forever, and FerretDB must be
// restarted (docs/cdc.md, "Writing a page"). On MongoDB, bulks are the
// faster way.
const DefaultBulkSize = 1

// DefaultWriteConcurrency is how many writes a Model has in flight at
// once unless set otherwise: the CDC's two workers' 4 each, as before they
// were shared (docs/cdc.md, "Writing a page").
const DefaultWriteConcurrency = 8

// MaxBulkSize bounds BulkSize: a page of the CDC's.
const MaxBulkSize = 200

// Put replaces (or inserts) each document whole. Replaying a transaction
// replaces a document with the same content: idempotent. ids[i] is the
// _id of docs[i].
//
// A Stamped document is fenced: it replaces the stored one only if that
// one is not newer (`lsn` at most its own). When the stored one is newer,
// the filter matches nothing and the upsert's insert collides on _id; that
// duplicate key means "already newer" and the document is skipped. So a
// writer that finishes late (a paused old CDC waking up in the middle of a
// batch) cannot undo newer work. MongoDB and FerretDB answer alike.
//
// The documents go BulkSize to a bulk write (unordered: one document's
// refusal does not stop the others; a fenced document's duplicate key in
// the bulk's result is skipped as above). Every Put of the Model shares
// WriteConcurrency writes in flight.
func (s *Model) Put(ctx context.Context, collection string, ids []string, docs []any) error {
	if len(ids) != len(docs) {
		return fmt.Errorf("put %s: %d ids for %d documents", collection, len(ids), len(docs))
	}
	c := s.coll(collection)
	s.slotsOnce.Do(func() { s.slots = make(chan struct{}, max(1, s.WriteConcurrency)) })
	var g errgroup.Group // every write is tried; the first failure is reported
	size := max(1, s.BulkSize)
	for from := 0; from < len(docs); from += size {
		to := min(from+size, len(docs))
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			if err := g.Wait(); err != nil {
				return err
			}
			return classify(fmt.Errorf("put %s: %w", collection, ctx.Err()))
		}
		g.Go(func() error {
			defer func() { <-s.slots }()
			ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
			defer cancel()
			if to-from == 1 {
				return s.putOne(ctx, c, collection, ids[from], docs[from])
			}
			return s.putBulk(ctx, c, collection, ids[from:to], docs[from:to])
		})
	}
	return g.Wait()
}

// fence is the filter of a document's upsert: its id and, for a Stamped
// document, a stored lsn that is not newer.
func fence(id string, doc any) (bson.D, bool) {
	filter := bson.D{{Key: "_id", Value: id}}
	st, fenced := doc.(Stamped)
	if fenced {
		filter = append(filter, bson.E{Key: "lsn", Value: bson.D{{Key: "$lte", Value: st.Stamp()}}})
	}
	return filter, fenced
}

func (s *Model) putOne(ctx context.Context, c *mongo.Collection, collection, id string, doc any) error {
	filter, fenced := fence(id, doc)
	_, err := c.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(true))
	if fenced && mongo.IsDuplicateKeyError(err) {
		err = nil // the stored document is newer: keep it
	}
	if err != nil {
		return classify(fmt.Errorf("put %s %s: %w", collection, id, err))
	}
	return nil
}

// putBulk writes documents in one unordered bulk. A fenced document's
// duplicate key is skipped. A server that stops at the bulk's first error
// (FerretDB 1.x does, unordered or not) reports fewer documents than it
// was sent: those after the last error are sent again, in a bulk of
// their own; upserts are idempotent, so a server that went on costs
// nothing but that bulk.
func (s *Model) putBulk(ctx context.Context, c *mongo.Collection, collection string, ids []string, docs []any) error {
	models := make([]mongo.WriteModel, len(docs))
	fenced := make([]bool, len(docs))
	for i, d := range docs {
		var filter bson.D
		filter, fenced[i] = fence(ids[i], d)
		models[i] = mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(d).SetUpsert(true)
	}
	for len(models) > 0 {
		res, err := c.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		var bwe mongo.BulkWriteException
		if err == nil || !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
			if err != nil {
				return classify(fmt.Errorf("put %d documents in %s: %w", len(models), collection, err))
			}
			return nil
		}
		last := -1
		for _, we := range bwe.WriteErrors {
			if we.Index < 0 || we.Index >= len(models) {
				return classify(fmt.Errorf("put %d documents in %s: %w", len(models), collection, err))
			}
			if !fenced[we.Index] || !we.HasErrorCode(11000) {
				return classify(fmt.Errorf("put %s %s: %w", collection, ids[we.Index], &we))
			}
			last = max(last, we.Index) // the stored document is newer: keep it
		}
		if res != nil && res.MatchedCount+res.UpsertedCount+int64(len(bwe.WriteErrors)) >= int64(len(models)) {
			return nil
		}
		models, fenced, ids = models[last+1:], fenced[last+1:], ids[last+1:]
	}
	return nil
}

// Delete removes documents whose source rows are gone.
func (s *Model) Delete(ctx context.Context, collection string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	_, err := s.coll(collection).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return classify(fmt.Errorf("delete from %s: %w", collection, err))
	}
	return nil
}

// Each streams every document of a collection to fn, in no set order.
func (s *Model) Each(ctx context.Context, collection string, fn func(raw bson.Raw) error) error {
	cur, err := s.coll(collection).Find(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("scan %s: %w", collection, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return err
		}
	}
	return cur.Err()
}

// EachID streams the _id of every document of a collection to fn, n at a
// time, in no set order: memory stays bounded whatever the collection's size.
func (s *Model) EachID(ctx context.Context, collection string, n int, fn func(ids []string) error) error {
	cur, err := s.coll(collection).Find(ctx, bson.D{}, options.Find().
		SetProjection(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(int32(n)))
	if err != nil {
		return fmt.Errorf("scan %s: %w", collection, err)
	}
	defer cur.Close(ctx)
	ids := make([]string, 0, n)
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup("_id").StringValueOK(); ok {
			ids = append(ids, id)
		}
		if len(ids) == n {
			if err := fn(ids); err != nil {
				return err
			}
			ids = ids[:0]
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("scan %s: %w", collection, err)
	}
	if len(ids) > 0 {
		return fn(ids)
	}
	return nil
}

// IDs returns the _id of every document in a collection.
func (s *Model) IDs(ctx context.Context, collection string) ([]string, error) {
	cur, err := s.coll(collection).Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", collection, err)
	}
	defer cur.Close(ctx)
	var ids []string
	for cur.Next(ctx) {
		id, ok := cur.Current.Lookup("_id").StringValueOK()
		if ok {
			ids = append(ids, id)
		}
	}
	return ids, cur.Err()
}
