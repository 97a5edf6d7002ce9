package readstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"time"

	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/wait"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A rebuild loads new copies of collections (a generation) beside the live
// ones, then switches readers to them by rewriting one pointer document.
// FerretDB has no renameCollection with dropTarget, and a single-document
// write is atomic on every MongoDB-wire server, so the pointer is the
// portable atomic swap.

// Pointer is the document that names the live generation of each
// collection and the slot that feeds them.
type Pointer struct {
	ID          string            `bson:"_id"`
	Generation  int64             `bson:"generation"`
	Collections map[string]string `bson:"collections"` // logical → physical
	Slot        string            `bson:"slot"`
	// Handover is where Slot takes over from the slot before it: the
	// position up to which Slot is already confirmed, so that it will not
	// send what lies before. A CDC streaming the previous slot may leave
	// it only once it has applied this far, into every collection.
	Handover int64 `bson:"handover_lsn"`
	// SlotStart is the name pointers had for the handover position before
	// handover_lsn (then the slot's consistent point). SavePointer writes
	// Handover here too, so that a CDC of the previous release waits for
	// the same position; LoadPointer reads it when handover_lsn is absent.
	SlotStart int64 `bson:"slot_start"`
	// Previous is the slot Slot took over from when a rebuild kept some
	// collections' generations, which only that slot feeds up to
	// Handover. A CDC that starts while it still exists applies it up to
	// Handover before it streams Slot.
	Previous string `bson:"previous_slot,omitempty"`
	// Search is the generation of the search store (internal/search) the
	// CDC writes; 0, on a read side that was never rebuilt, means the
	// search store's live one. A rebuild switches it with the collections.
	Search int64 `bson:"search_generation,omitempty"`
	// Followed is the Postgres history the collections reflect, and the
	// base of their positions in it (consistency.Followed). It is zero on
	// a read side built before histories were recorded, until a CDC
	// records the history it streams.
	Followed  consistency.Followed `bson:"followed"`
	UpdatedAt time.Time            `bson:"updated_at"`
}

const (
	metaCollection = "swapmeet_meta"
	pointerID      = "projections"
)

// ErrNoPointer means the read side was never initialised.
var ErrNoPointer = errors.New("no projections pointer: the read side was never initialised")

// InitialPointer is the pointer of a fresh read side: plain names.
func InitialPointer(slot string) Pointer {
	names := map[string]string{}
	for _, c := range Collections {
		names[c] = c
	}
	return Pointer{ID: pointerID, Collections: names, Slot: slot}
}

// ShadowName is the physical name of a collection's generation g.
func ShadowName(collection string, g int64) string {
	return collection + "_g" + strconv.FormatInt(g, 10)
}

var shadowRE = regexp.MustCompile(`^(users|listings|orders|reviews)_g[0-9]+$`)

// IsGenerationName reports whether name is some generation of a collection.
func IsGenerationName(name string) bool { return shadowRE.MatchString(name) }

// LoadPointer reads the pointer from the store.
func (s *Model) LoadPointer(ctx context.Context) (Pointer, error) {
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	var p Pointer
	err := s.db.Collection(metaCollection).FindOne(ctx, bson.D{{Key: "_id", Value: pointerID}}).Decode(&p)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Pointer{}, ErrNoPointer
	}
	if err != nil {
		return Pointer{}, fmt.Errorf("read projections pointer: %w", err)
	}
	if p.Handover == 0 {
		p.Handover = p.SlotStart // written before handover_lsn existed
	}
	return p, nil
}

// SavePointer writes the pointer: the atomic switch.
func (s *Model) SavePointer(ctx context.Context, p Pointer) error {
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	p.ID = pointerID
	p.SlotStart = p.Handover
	p.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	_, err := s.db.Collection(metaCollection).ReplaceOne(ctx, bson.D{{Key: "_id", Value: pointerID}}, p, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("write projections pointer: %w", err)
	}
	s.use(p)
	return nil
}

// RecordHistory records the history a read side built before histories
// follows, on the pointer of generation gen, unless one is recorded: a CDC
// does it once, when it first streams. It reports whether it wrote.
func (s *Model) RecordHistory(ctx context.Context, gen int64, f consistency.Followed) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	res, err := s.db.Collection(metaCollection).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: pointerID}, {Key: "generation", Value: gen}, {Key: "followed.history.system", Value: bson.D{{Key: "$in", Value: bson.A{nil, 0}}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "followed", Value: f}}}})
	if err != nil {
		return false, fmt.Errorf("record the history on the projections pointer: %w", err)
	}
	if _, err := s.Refresh(ctx); err != nil {
		return false, err
	}
	return res.ModifiedCount > 0, nil
}

// use makes the Model resolve logical names through p.
func (s *Model) use(p Pointer) {
	p.Collections = maps.Clone(p.Collections)
	s.pointer.Store(&p)
}

// Current is the pointer as last loaded, saved or followed, without a
// round trip; ok is false before the first load.
func (s *Model) Current() (p Pointer, ok bool) {
	if c := s.pointer.Load(); c != nil {
		return *c, true
	}
	return Pointer{}, false
}

// Refresh reloads the pointer once. A store without a pointer keeps
// resolving every name to itself.
func (s *Model) Refresh(ctx context.Context) (Pointer, error) {
	p, err := s.LoadPointer(ctx)
	if err != nil {
		return Pointer{}, err
	}
	s.use(p)
	return p, nil
}

// Follow refreshes the pointer every interval until ctx ends, so a switch
// reaches this process within that interval and without a restart.
func (s *Model) Follow(ctx context.Context, interval time.Duration) {
	refresh := func(ctx context.Context) { _, _ = s.Refresh(ctx) } // a failed refresh keeps the last known names
	refresh(ctx)
	wait.Every(ctx, interval, refresh)
}

// Physical returns the collection a logical name currently resolves to.
func (s *Model) Physical(name string) string {
	if c := s.pointer.Load(); c != nil {
		if p, ok := c.Collections[name]; ok {
			return p
		}
	}
	return name
}

// CollectionNames lists the database's collections.
func (s *Model) CollectionNames(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	return s.db.ListCollectionNames(ctx, bson.D{})
}

// DropCollection drops a physical collection.
func (s *Model) DropCollection(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*s.OpTimeout)
	defer cancel()
	return s.db.Collection(name).Drop(ctx)
}

// CreateCollections creates the physical collections that do not exist.
// Writes create a missing collection too, but then creating it is part of
// whichever write comes first, perhaps while the store is failing:
// FerretDB 1.24, stopped in the middle of a creation, keeps the table and
// loses its record of it, and every later write to the collection fails
// with "relation … already exists".
func (s *Model) CreateCollections(ctx context.Context, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*s.OpTimeout)
	defer cancel()
	for _, n := range names {
		err := s.db.CreateCollection(ctx, n)
		var ce mongo.CommandError
		if err != nil && !(errors.As(err, &ce) && ce.Code == namespaceExists) {
			return fmt.Errorf("create collection %s: %w", n, err)
		}
	}
	return nil
}

// namespaceExists is the server's error code for a collection that exists.
const namespaceExists = 48

// InsertMany inserts new documents into a physical collection: the fast
// path of a bulk load, where every document is new.
func (s *Model) InsertMany(ctx context.Context, collection string, docs []any) error {
	if len(docs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*s.OpTimeout)
	defer cancel()
	_, err := s.db.Collection(collection).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil {
		return fmt.Errorf("insert into %s: %w", collection, err)
	}
	return nil
}
