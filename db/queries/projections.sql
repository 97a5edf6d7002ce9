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
