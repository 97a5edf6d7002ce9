-- The order of a listing's images, which the seller sets (ReorderMedia):
-- the listing shows its confirmed images by position, then by upload time.
-- A confirmation puts the image last; existing images keep upload order.
-- Every change to a listing's images takes the listing's row lock first,
-- so positions are assigned one writer at a time.
ALTER TABLE listing_media ADD COLUMN position integer NOT NULL DEFAULT 0 CHECK (position >= 0);
UPDATE listing_media m SET position = o.n
FROM (
    SELECT id, row_number() OVER (PARTITION BY listing_id ORDER BY created_at, id) AS n
    FROM listing_media WHERE status = 'CONFIRMED'
) o
WHERE m.id = o.id;
