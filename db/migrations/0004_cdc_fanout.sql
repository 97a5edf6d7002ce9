-- Updates of a user carry the old row in the WAL, so the CDC can tell a
-- rename (which every listing, order and review embedding the name must
-- follow) from a bio edit (which touches the profile alone).
ALTER TABLE users REPLICA IDENTITY FULL;

-- The CDC pages through a user's or a listing's dependants in id order, so
-- that a fan-out to 200,000 listings costs bounded memory and each page is
-- an index range, not a sort of everything the user has.
CREATE INDEX listings_seller_id_id_idx ON listings (seller_id, id);
DROP INDEX listings_seller_id_idx;
CREATE INDEX orders_buyer_id_id_idx ON orders (buyer_id, id);
CREATE INDEX orders_seller_id_id_idx ON orders (seller_id, id);
DROP INDEX orders_seller_id_idx;
CREATE INDEX reviews_author_id_id_idx ON reviews (author_id, id);
DROP INDEX reviews_author_id_idx;
CREATE INDEX order_items_listing_id_order_id_idx ON order_items (listing_id, order_id);
DROP INDEX order_items_listing_id_idx;
