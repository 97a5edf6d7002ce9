-- name: CountLiveMedia :one
-- Images that count towards a listing's limit: confirmed ones, and pending
-- ones whose upload may still arrive.
SELECT count(*) FROM listing_media
WHERE listing_id = @listing_id
  AND (status = 'CONFIRMED' OR created_at > now() - make_interval(secs => @pending_secs::float8));

-- name: CountConfirmedMedia :one
SELECT count(*) FROM listing_media WHERE listing_id = @listing_id AND status = 'CONFIRMED';

-- name: CreatePendingMedia :exec
INSERT INTO listing_media (id, listing_id, object_key, content_type, size_bytes)
VALUES (@id, @listing_id, @object_key, @content_type, @size_bytes);

-- name: GetListingMedia :one
-- A listing and one of its media rows, if it exists: the listing decides
-- who may ask before the media row is looked at.
SELECT l.seller_id, l.status AS listing_status,
       m.id AS media_id, m.object_key, m.content_type, m.size_bytes, m.status, m.created_at
FROM listings l LEFT JOIN listing_media m ON m.listing_id = l.id AND m.id = @media_id
WHERE l.id = @listing_id;

-- name: ConfirmMedia :execrows
-- Guarded: a second confirmation changes nothing. The image goes last;
-- the caller holds the listing's row lock.
UPDATE listing_media m
SET status = 'CONFIRMED', confirmed_at = now(), width = @width, height = @height,
    position = (SELECT coalesce(max(o.position), 0) + 1 FROM listing_media o
                WHERE o.listing_id = m.listing_id AND o.status = 'CONFIRMED')
WHERE m.id = @id AND m.listing_id = @listing_id AND m.status = 'PENDING';

-- name: ListConfirmedMediaIDs :many
SELECT id FROM listing_media WHERE listing_id = @listing_id AND status = 'CONFIRMED';

-- name: SetMediaPositions :execrows
-- Positions 1..n in the order of @ids; only rows whose position changes
-- are written. The caller holds the listing's row lock.
UPDATE listing_media m SET position = o.n
FROM unnest(@ids::uuid[]) WITH ORDINALITY AS o(id, n)
WHERE m.id = o.id AND m.listing_id = @listing_id AND m.status = 'CONFIRMED' AND m.position <> o.n;

-- name: DeletePendingMedia :execrows
DELETE FROM listing_media WHERE id = @id AND status = 'PENDING';

-- name: DeleteMedia :one
DELETE FROM listing_media WHERE id = @id AND listing_id = @listing_id
RETURNING object_key, thumbnail_key;

-- name: ClaimThumbnailJob :one
-- A confirmed image without a thumbnail that no other worker holds and
-- whose retry is due: those tried least first, then the oldest. The row
-- lock lasts until the outcome is recorded, so replicas never make the
-- same one, and a worker that dies leaves the row for the next.
SELECT id, object_key, content_type, size_bytes, thumbnail_attempts FROM listing_media
WHERE status = 'CONFIRMED' AND thumbnail_key IS NULL
  AND (thumbnail_retry_at IS NULL OR thumbnail_retry_at <= now())
ORDER BY thumbnail_attempts, confirmed_at
LIMIT 1
FOR UPDATE SKIP LOCKED;

-- name: SetThumbnail :execrows
-- The outcome: the thumbnail's key, or, for an image that failed for
-- good, the original's key and the reason.
UPDATE listing_media
SET thumbnail_key = @thumbnail_key, thumbnail_error = sqlc.narg(thumbnail_error),
    thumbnail_attempts = thumbnail_attempts + 1, thumbnail_retry_at = NULL
WHERE id = @id AND thumbnail_key IS NULL;

-- name: DeferThumbnail :execrows
-- A failed attempt that may be retried, after the pause.
UPDATE listing_media
SET thumbnail_attempts = thumbnail_attempts + 1, thumbnail_error = @thumbnail_error,
    thumbnail_retry_at = now() + make_interval(secs => @retry_after_secs::float8)
WHERE id = @id AND thumbnail_key IS NULL;

-- name: DeleteStalePendingMedia :many
-- Pending uploads older than the cutoff, a batch at a time.
DELETE FROM listing_media WHERE id IN (
    SELECT id FROM listing_media
    WHERE status = 'PENDING' AND created_at < now() - make_interval(secs => @older_than_secs::float8)
    ORDER BY created_at
    LIMIT @batch
    FOR UPDATE SKIP LOCKED)
RETURNING object_key, thumbnail_key;

-- name: DeleteWithdrawnListingMedia :many
-- Every image of withdrawn listings (a final state), a batch at a time.
DELETE FROM listing_media WHERE id IN (
    SELECT m.id FROM listing_media m JOIN listings l ON l.id = m.listing_id
    WHERE l.status = 'WITHDRAWN'
    LIMIT @batch
    FOR UPDATE OF m SKIP LOCKED)
RETURNING object_key, thumbnail_key;

-- name: ExistingObjectKeys :many
-- Those of the keys that some row names as its original.
SELECT object_key FROM listing_media WHERE object_key = ANY (@keys::text[]);

-- name: CountSellerPendingUploads :one
-- A seller's uploads whose policy may still be used.
SELECT count(*) FROM listing_media m JOIN listings l ON l.id = m.listing_id
WHERE l.seller_id = @seller_id AND m.status = 'PENDING'
  AND m.created_at > now() - make_interval(secs => @pending_secs::float8);
