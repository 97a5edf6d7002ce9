-- Updates and deletes of orders and reviews carry their old row in the
-- WAL, so the history shows each change's before and after values from
-- the WAL alone (docs/history.md). Inserts, PlaceOrder's and
-- CreateReview's, are unchanged: only an update or a delete logs an old
-- row.
ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE reviews REPLICA IDENTITY FULL;
