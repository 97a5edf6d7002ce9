package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
)

// The creating writes that take an optional idempotency key (CreateListing,
// CreateMediaUpload) follow PlaceOrder's rules: a key is the caller's, the
// first request with it makes the object, a retry with the same request
// gets that object again, and the same key with another request is
// refused (IDEMPOTENCY_KEY_REUSED). The key, the request's digest and the
// object are stored in the object's own transaction (idempotency_keys), so
// that concurrent retries serialise on the key: one makes the object, the
// others wait for it and answer with it.

// idempotencyKeyTTL is how long a key is kept; PurgeSessions drops the
// older ones.
const idempotencyKeyTTL = 24 * time.Hour

// idempotent is one use of a key: empty key means none.
type idempotent struct {
	owner     uuid.UUID
	operation string
	key       string
	digest    []byte
}

// newIdempotent digests request (a validated input, as JSON) for key.
func newIdempotent(owner uuid.UUID, operation, key string, request any) (idempotent, error) {
	b, err := json.Marshal(request)
	if err != nil {
		return idempotent{}, err
	}
	sum := sha256.Sum256(b)
	return idempotent{owner: owner, operation: operation, key: key, digest: sum[:]}, nil
}

// errKeyClaimed is claim's answer when the key is already used.
var errKeyClaimed = errors.New("idempotency key already used")

// errKeyBusy answers a request whose key another request holds, or whose
// key's object went away meanwhile: a retry sorts it out.
var errKeyBusy = &Error{Code: CodeConflict, Reason: ReasonIdempotencyKeyBusy, Message: "this idempotency_key is in use; retry"}

// claim records the key for object in the caller's transaction.
func (k idempotent) claim(ctx context.Context, q *sqlc.Queries, object uuid.UUID) error {
	if k.key == "" {
		return nil
	}
	err := q.ClaimIdempotencyKey(ctx, sqlc.ClaimIdempotencyKeyParams{
		OwnerID: k.owner, Operation: k.operation, Key: k.key, Digest: k.digest, ObjectID: object,
	})
	if db.IsUniqueViolation(err, "idempotency_keys_pkey") {
		return errKeyClaimed
	}
	return err
}

// previous is the object the key made, if it was used: ok is false for a
// key not used yet, and a key used with another request is refused.
func (k idempotent) previous(ctx context.Context, store *db.Store) (uuid.UUID, bool, error) {
	if k.key == "" {
		return uuid.Nil, false, nil
	}
	row, err := store.FindIdempotencyKey(ctx, sqlc.FindIdempotencyKeyParams{OwnerID: k.owner, Operation: k.operation, Key: k.key})
	if errors.Is(err, db.ErrNotFound) {
		return uuid.Nil, false, nil
	}
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("look up idempotency key: %w", err)
	}
	if !bytes.Equal(row.Digest, k.digest) {
		return uuid.Nil, false, refusef(CodeFailedPrecondition, ReasonIdempotencyKeyReused,
			"this idempotency_key was already used for a different %s request", k.operation)
	}
	return row.ObjectID, true, nil
}

// purgeIdempotencyKeys drops the keys older than idempotencyKeyTTL, a
// batch per statement.
func (c *Commands) purgeIdempotencyKeys(ctx context.Context) (int64, error) {
	before := time.Now().Add(-idempotencyKeyTTL)
	return purgeInBatches("idempotency keys", func() (int64, error) {
		return c.deps.Store.PurgeIdempotencyKeys(ctx, sqlc.PurgeIdempotencyKeysParams{Before: before, Batch: purgeBatch})
	})
}
