-- name: ListUserProjections :many
SELECT u.id,
       u.display_name,
       u.bio,
       u.created_at,
       coalesce((SELECT avg(r.rating) FROM reviews r WHERE r.seller_id = u.id), 0)::float8 AS rating_average,
       (SELECT count(*) FROM reviews r WHERE r.seller_id = u.id)::int4 AS rating_count,
       (SELECT count(*) FROM listings l WHERE l.seller_id = u.id AND l.status = 'AVAILABLE')::int4 AS active_listing_count,
       (SELECT count(*) FROM listings l WHERE l.seller_id = u.id AND l.status = 'SOLD')::int4 AS sold_count
FROM users u
WHERE u.id = ANY (@ids::uuid[]);

-- name: ListAllUserIDs :many
SELECT id FROM users WHERE id > @after ORDER BY id LIMIT @batch;

-- name: ListListingProjections :many
SELECT l.id, l.seller_id, u.display_name AS seller_name,
       coalesce(rs.rating_average, 0)::float8 AS seller_rating_average,
       coalesce(rs.rating_count, 0)::int4 AS seller_rating_count,
       l.title, l.description, l.category, l.condition, l.price_currency, l.price_minor,
       l.attributes, l.status, l.version, l.created_at, l.updated_at,
       -- The confirmed images in the seller's order, in the same statement:
       -- a listing document costs one read.
       coalesce((
           SELECT jsonb_agg(jsonb_build_object('id', m.id, 'object_key', m.object_key, 'content_type', m.content_type,
                                               'size_bytes', m.size_bytes, 'width', m.width, 'height', m.height,
                                               'thumbnail_key', m.thumbnail_key)
                            ORDER BY m.position, m.created_at, m.id)
           FROM listing_media m WHERE m.listing_id = l.id AND m.status = 'CONFIRMED'
       ), '[]')::jsonb AS media
FROM listings l
JOIN users u ON u.id = l.seller_id
LEFT JOIN LATERAL (
    SELECT avg(r.rating)::float8 AS rating_average, count(*)::int4 AS rating_count
    FROM reviews r WHERE r.seller_id = l.seller_id
) rs ON true
WHERE l.id = ANY (@ids::uuid[]);

-- name: ListOrderProjections :many
SELECT o.id, o.status, o.total_currency, o.total_minor, o.created_at, o.updated_at,
       o.paid_at, o.shipped_at, o.delivered_at, o.cancelled_at,
       o.buyer_id, b.display_name AS buyer_name,
       coalesce(br.rating_average, 0)::float8 AS buyer_rating_average,
       coalesce(br.rating_count, 0)::int4 AS buyer_rating_count,
       o.seller_id, s.display_name AS seller_name,
       coalesce(sr.rating_average, 0)::float8 AS seller_rating_average,
       coalesce(sr.rating_count, 0)::int4 AS seller_rating_count
FROM orders o
JOIN users b ON b.id = o.buyer_id
JOIN users s ON s.id = o.seller_id
LEFT JOIN LATERAL (SELECT avg(rating)::float8 AS rating_average, count(*)::int4 AS rating_count FROM reviews WHERE seller_id = o.buyer_id) br ON true
LEFT JOIN LATERAL (SELECT avg(rating)::float8 AS rating_average, count(*)::int4 AS rating_count FROM reviews WHERE seller_id = o.seller_id) sr ON true
WHERE o.id = ANY (@ids::uuid[]);

-- name: ListOrderItemProjections :many
-- The thumbnail is the listing's first confirmed image, if any, in the
-- seller's order.
SELECT i.order_id, i.listing_id, i.title, i.price_currency, i.price_minor,
       coalesce(m.id::text, '')::text AS media_id, coalesce(m.object_key, '')::text AS object_key,
       coalesce(m.content_type, '')::text AS content_type, coalesce(m.size_bytes, 0)::int8 AS size_bytes,
       coalesce(m.width, 0)::int4 AS width, coalesce(m.height, 0)::int4 AS height,
       coalesce(m.thumbnail_key, '')::text AS thumbnail_key
FROM order_items i
LEFT JOIN LATERAL (
    SELECT id, object_key, content_type, size_bytes, width, height, thumbnail_key
    FROM listing_media lm
    WHERE lm.listing_id = i.listing_id AND lm.status = 'CONFIRMED'
    ORDER BY lm.position, lm.created_at, lm.id
    LIMIT 1
) m ON true
WHERE i.order_id = ANY (@order_ids::uuid[])
ORDER BY i.order_id, i.listing_id;

-- name: ListReviewProjections :many
SELECT r.id, r.order_id, r.seller_id, r.rating, r.comment, r.created_at,
       r.author_id, a.display_name AS author_name,
       coalesce(ar.rating_average, 0)::float8 AS author_rating_average,
       coalesce(ar.rating_count, 0)::int4 AS author_rating_count
FROM reviews r
JOIN users a ON a.id = r.author_id
LEFT JOIN LATERAL (SELECT avg(rating)::float8 AS rating_average, count(*)::int4 AS rating_count FROM reviews WHERE seller_id = r.author_id) ar ON true
WHERE r.id = ANY (@ids::uuid[]);

-- Fan-out: the documents that embed a user's summary (name and rating), or
-- a listing's first image, one page at a time in id order.

-- name: PageListingIDsBySeller :many
SELECT id FROM listings WHERE seller_id = @user_id AND id > @after ORDER BY id LIMIT @batch;

-- name: PageOrderIDsByBuyer :many
SELECT id FROM orders WHERE buyer_id = @user_id AND id > @after ORDER BY id LIMIT @batch;

-- name: PageOrderIDsBySeller :many
SELECT id FROM orders WHERE seller_id = @user_id AND id > @after ORDER BY id LIMIT @batch;

-- name: PageReviewIDsByAuthor :many
SELECT id FROM reviews WHERE author_id = @user_id AND id > @after ORDER BY id LIMIT @batch;

-- name: PageOrderIDsByListing :many
SELECT order_id FROM order_items WHERE listing_id = @listing_id AND order_id > @after ORDER BY order_id LIMIT @batch;

-- Which of the given ids still have a row: a full pass removes the
-- documents of the others.

-- name: ExistingUserIDs :many
SELECT id FROM users WHERE id = ANY (@ids::uuid[]);

-- name: ExistingListingIDs :many
SELECT id FROM listings WHERE id = ANY (@ids::uuid[]);

-- name: ExistingOrderIDs :many
SELECT id FROM orders WHERE id = ANY (@ids::uuid[]);

-- name: ExistingReviewIDs :many
SELECT id FROM reviews WHERE id = ANY (@ids::uuid[]);

-- name: ListAllListingIDs :many
SELECT id FROM listings WHERE id > @after ORDER BY id LIMIT @batch;

-- name: ListAllOrderIDs :many
SELECT id FROM orders WHERE id > @after ORDER BY id LIMIT @batch;

-- name: ListAllReviewIDs :many
SELECT id FROM reviews WHERE id > @after ORDER BY id LIMIT @batch;

-- name: CurrentPosition :one
-- The end of the WAL inserted so far: at or after the commit record of
-- every transaction that has committed, whatever synchronous_commit says
-- (pg_current_wal_lsn(), the write position, can be before it). Right
-- after a page header the insert position is reported past the header;
-- a record ending at that page boundary has the boundary as its end, and
-- the server reports no later WAL end until more is written, so the
-- header is taken off (40 bytes on a segment's first page, 24 elsewhere).
-- With it, the history it lies in: the cluster's system identifier and the
-- timeline WAL is inserted on (the first 8 hex digits of the name of the
-- segment that holds the position). The consistency token of a write
-- names all three. db/pipeline.go reads the same expression after COMMIT.
SELECT (CASE
          WHEN p % seg = 40 THEN p - 40
          WHEN p % blk = 24 THEN p - 24
          ELSE p
        END)::int8 AS lsn,
       (SELECT system_identifier FROM pg_control_system())::int8 AS system,
       ('x' || left(pg_walfile_name(i), 8))::bit(32)::int8 AS timeline
FROM (SELECT i, i - '0/0' AS p,
             current_setting('wal_block_size')::numeric AS blk,
             pg_size_bytes(current_setting('wal_segment_size'))::numeric AS seg
      FROM pg_current_wal_insert_lsn() AS i) AS wal;

-- name: CountUsers :one
SELECT count(*) FROM users;

-- name: CountListings :one
SELECT count(*) FROM listings;

-- name: CountOrders :one
SELECT count(*) FROM orders;

-- name: CountReviews :one
SELECT count(*) FROM reviews;
