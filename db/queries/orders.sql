-- name: FindOrderByIdempotencyKey :one
SELECT o.id, o.total_currency, o.total_minor,
       array_agg(i.listing_id ORDER BY i.listing_id)::uuid[] AS listing_ids
FROM orders o JOIN order_items i ON i.order_id = o.id
WHERE o.buyer_id = @buyer_id AND o.idempotency_key = @idempotency_key
GROUP BY o.id;

-- name: LockListingsForOrder :many
-- Locks in id order: two orders that share listings lock them in the same
-- order, so they queue instead of deadlocking.
SELECT id, seller_id, status, title, price_currency, price_minor
FROM listings
WHERE id = ANY (@ids::uuid[])
ORDER BY id
FOR UPDATE;

-- name: CreateOrder :one
-- One round trip for the whole write: the listings become SOLD, the order
-- and its items are inserted. It returns how many listings it sold, which
-- must be all of them (they are locked and were checked).
WITH sold AS (
    UPDATE listings
    SET status = 'SOLD', version = version + 1, updated_at = now()
    WHERE id = ANY (@listing_ids::uuid[]) AND status = 'AVAILABLE'
    RETURNING id
), created AS (
    INSERT INTO orders (id, buyer_id, seller_id, idempotency_key, total_currency, total_minor)
    VALUES (@id, @buyer_id, @seller_id, @idempotency_key, @total_currency, @total_minor)
), items AS (
    INSERT INTO order_items (order_id, listing_id, title, price_currency, price_minor)
    SELECT @id, unnest(@listing_ids::uuid[]), unnest(@titles::text[]), unnest(@currencies::text[]), unnest(@prices::bigint[])
)
SELECT count(*)::int8 AS sold FROM sold;

-- name: FindOrderParties :one
SELECT buyer_id, seller_id, status FROM orders WHERE id = @id;

-- Each transition is one guarded UPDATE: it changes the row only if the
-- caller holds the role and the order is in the required state. Two racing
-- transitions serialise on the row lock, and the loser re-checks the guard
-- against the winner's committed row, so only one can succeed.

-- name: MarkOrderPaid :execrows
UPDATE orders SET status = 'PAID', paid_at = now(), updated_at = now()
WHERE id = @id AND buyer_id = @buyer_id AND status = 'PENDING';

-- name: MarkOrderShipped :execrows
UPDATE orders SET status = 'SHIPPED', shipped_at = now(), updated_at = now()
WHERE id = @id AND seller_id = @seller_id AND status = 'PAID';

-- name: ConfirmDelivery :execrows
UPDATE orders SET status = 'DELIVERED', delivered_at = now(), updated_at = now()
WHERE id = @id AND buyer_id = @buyer_id AND status = 'SHIPPED';

-- name: CancelOrder :execrows
UPDATE orders SET status = 'CANCELLED', cancelled_at = now(), updated_at = now()
WHERE id = @id AND (buyer_id = @user_id OR seller_id = @user_id) AND status IN ('PENDING', 'PAID');

-- name: ReleaseOrderListings :execrows
UPDATE listings l
SET status = 'AVAILABLE', version = l.version + 1, updated_at = now()
FROM order_items i
WHERE i.order_id = @order_id AND l.id = i.listing_id AND l.status = 'SOLD';
