-- name: CreateListing :one
INSERT INTO listings (id, seller_id, title, description, category, condition, price_currency, price_minor, attributes)
VALUES (@id, @seller_id, @title, @description, @category, @condition, @price_currency, @price_minor, @attributes)
RETURNING version;

-- name: LockListing :one
-- Takes the row lock that serialises every change to one listing.
SELECT id, seller_id, status, version FROM listings WHERE id = @id FOR UPDATE;

-- name: UpdateListing :one
-- Guarded: it changes nothing unless the version and status still match.
UPDATE listings
SET title          = CASE WHEN @set_title::bool THEN @title ELSE title END,
    description    = CASE WHEN @set_description::bool THEN @description ELSE description END,
    category       = CASE WHEN @set_category::bool THEN @category ELSE category END,
    condition      = CASE WHEN @set_condition::bool THEN @condition ELSE condition END,
    price_currency = CASE WHEN @set_price::bool THEN @price_currency ELSE price_currency END,
    price_minor    = CASE WHEN @set_price::bool THEN @price_minor ELSE price_minor END,
    attributes     = CASE WHEN @set_attributes::bool THEN @attributes ELSE attributes END,
    version        = version + 1,
    updated_at     = now()
WHERE id = @id AND version = @expected_version AND status = 'AVAILABLE'
RETURNING version;

-- name: WithdrawListing :one
UPDATE listings
SET status = 'WITHDRAWN', version = version + 1, updated_at = now()
WHERE id = @id AND version = @expected_version AND status = 'AVAILABLE'
RETURNING version;

-- name: LockSellerQuota :exec
-- Serialises one seller's quota checks with their inserts, so concurrent
-- calls cannot all pass a count that only one of them may.
SELECT pg_advisory_xact_lock(hashtextextended('quota:' || @seller_id::text, 0));

-- name: CountSellerListings :one
SELECT count(*) FILTER (WHERE created_at > now() - interval '24 hours') AS created_last_day,
       count(*) FILTER (WHERE status = 'AVAILABLE') AS active
FROM listings WHERE seller_id = @seller_id;

-- name: CountAvailableByCategory :many
-- What the search projection's category counts must say (projections verify).
SELECT category, count(*) AS available FROM listings WHERE status = 'AVAILABLE' GROUP BY category ORDER BY category;
