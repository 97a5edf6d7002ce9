-- name: ClaimIdempotencyKey :exec
-- Fails with a unique violation when the key was used (or is being used,
-- by a transaction not committed yet: the insert waits for it).
INSERT INTO idempotency_keys (owner_id, operation, key, digest, object_id)
VALUES (@owner_id, @operation, @key, @digest, @object_id);

-- name: FindIdempotencyKey :one
SELECT digest, object_id FROM idempotency_keys
WHERE owner_id = @owner_id AND operation = @operation AND key = @key;

-- name: PurgeIdempotencyKeys :execrows
-- At most @batch keys older than @before, oldest first.
DELETE FROM idempotency_keys k
USING (SELECT i.owner_id, i.operation, i.key FROM idempotency_keys i
       WHERE i.created_at < @before ORDER BY i.created_at LIMIT @batch) AS old
WHERE k.owner_id = old.owner_id AND k.operation = old.operation AND k.key = old.key;

-- name: ListingVersion :one
SELECT version FROM listings WHERE id = @id;
