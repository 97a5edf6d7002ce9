-- The owner lists' indexes, built once a generation's bulk load is done:
-- each ends with the sort key and id, newest first being a backward scan.
CREATE INDEX IF NOT EXISTS orders_g{{gen}}_buyer     ON orders_g{{gen}} (buyer_id, created_at, id);
CREATE INDEX IF NOT EXISTS orders_g{{gen}}_buyer_st  ON orders_g{{gen}} (buyer_id, status, created_at, id);
CREATE INDEX IF NOT EXISTS orders_g{{gen}}_seller    ON orders_g{{gen}} (seller_id, created_at, id);
CREATE INDEX IF NOT EXISTS orders_g{{gen}}_seller_st ON orders_g{{gen}} (seller_id, status, created_at, id);
CREATE INDEX IF NOT EXISTS reviews_g{{gen}}_seller   ON reviews_g{{gen}} (seller_id, created_at, id);
