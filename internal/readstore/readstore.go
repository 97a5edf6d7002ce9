// Package readstore owns the MongoDB read model: the denormalized documents
// the CDC writes and the queries read. Every document carries the WAL
// position (lsn) of the last commit it reflects.
package readstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrNotFound means the read store has no such document.
var ErrNotFound = errors.New("document not found")

// Store is the read model in one Mongo database.
type Store struct {
	db *mongo.Database
	// OpTimeout bounds every call, so that a hung server fails fast
	// instead of piling up requests.
	OpTimeout time.Duration
}

// New returns a Store over db.
func New(db *mongo.Database) *Store {
	return &Store{db: db, OpTimeout: 5 * time.Second}
}

// Connect dials uri and returns the client (close it with Disconnect).
func Connect(ctx context.Context, uri string) (*mongo.Client, error) {
	c, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("mongo connect: %w", err)
	}
	return c, nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	return s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

// DB exposes the database to tools and tests.
func (s *Store) DB() *mongo.Database { return s.db }

func (s *Store) users() *mongo.Collection { return s.db.Collection("users") }

// User is the users document: a public profile with its seller statistics.
type User struct {
	ID                 string    `bson:"_id"`
	DisplayName        string    `bson:"display_name"`
	Bio                string    `bson:"bio"`
	JoinedAt           time.Time `bson:"joined_at"`
	RatingAverage      float64   `bson:"rating_average"`
	RatingCount        int32     `bson:"rating_count"`
	ActiveListingCount int32     `bson:"active_listing_count"`
	SoldCount          int32     `bson:"sold_count"`
	LSN                int64     `bson:"lsn"`
}

// FindUserRaw returns the user document as stored, ready to cache.
func (s *Store) FindUserRaw(ctx context.Context, id string) (bson.Raw, error) {
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	raw, err := s.users().FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find user %s: %w", id, err)
	}
	return raw, nil
}

// DecodeUser decodes a stored or cached user document.
func DecodeUser(raw []byte) (User, error) {
	var u User
	err := bson.Unmarshal(raw, &u)
	return u, err
}

// FindUser returns one user document.
func (s *Store) FindUser(ctx context.Context, id string) (User, error) {
	raw, err := s.FindUserRaw(ctx, id)
	if err != nil {
		return User{}, err
	}
	return DecodeUser(raw)
}

// PutUsers replaces (or inserts) each document whole. Replaying a
// transaction replaces a document with the same content: idempotent.
func (s *Store) PutUsers(ctx context.Context, docs []User) error {
	for _, d := range docs {
		if err := s.replace(ctx, s.users(), d.ID, d); err != nil {
			return fmt.Errorf("put user %s: %w", d.ID, err)
		}
	}
	return nil
}

// DeleteUsers removes the documents of users that no longer exist.
func (s *Store) DeleteUsers(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	_, err := s.users().DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	return err
}

func (s *Store) replace(ctx context.Context, c *mongo.Collection, id string, doc any) error {
	ctx, cancel := context.WithTimeout(ctx, s.OpTimeout)
	defer cancel()
	_, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc, options.Replace().SetUpsert(true))
	return err
}

// AllUsers streams every user document to fn (for verification tools).
func (s *Store) AllUsers(ctx context.Context, fn func(User) error) error {
	cur, err := s.users().Find(ctx, bson.D{})
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var u User
		if err := cur.Decode(&u); err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return cur.Err()
}
