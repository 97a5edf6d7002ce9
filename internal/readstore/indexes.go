package readstore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// indexes match the query shapes of the read side.
var indexes = map[string][]mongo.IndexModel{
	Listings: {
		{Keys: bson.D{{Key: "status", Value: 1}, {Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}},
		// Price sorts break ties newest first in both directions, so
		// each direction needs its own index.
		{Keys: bson.D{{Key: "status", Value: 1}, {Key: "price.minor", Value: 1}, {Key: "_id", Value: -1}}},
		{Keys: bson.D{{Key: "status", Value: 1}, {Key: "price.minor", Value: -1}, {Key: "_id", Value: -1}}},
		{Keys: bson.D{{Key: "keywords", Value: 1}}},
		{Keys: bson.D{{Key: "attribute_pairs", Value: 1}}},
		{Keys: bson.D{{Key: "category", Value: 1}, {Key: "status", Value: 1}, {Key: "created_at", Value: -1}}},
		{Keys: bson.D{{Key: "seller.id", Value: 1}, {Key: "created_at", Value: -1}}},
	},
	// The orders and reviews are read here by id only: their lists by
	// owner are the search store's (internal/search).
}

// EnsureIndexes creates the indexes the queries need; it is idempotent.
// Indexes are created one at a time: FerretDB 1.24 drops the connection
// when a createIndexes with several indexes names one that exists.
func (s *Model) EnsureIndexes(ctx context.Context) error {
	for coll := range indexes {
		if err := s.EnsureIndexesOn(ctx, coll, coll); err != nil {
			return err
		}
	}
	return nil
}

// EnsureIndexesOn creates a logical collection's indexes on the named
// physical collection (a generation being built).
func (s *Model) EnsureIndexesOn(ctx context.Context, logical, physical string) error {
	for _, m := range indexes[logical] {
		ctx, cancel := context.WithTimeout(ctx, 10*s.OpTimeout)
		_, err := s.coll(physical).Indexes().CreateOne(ctx, m)
		cancel()
		if err != nil {
			return fmt.Errorf("create index %v on %s: %w", m.Keys, physical, err)
		}
	}
	return nil
}
