-- The indexes of a generation, built once its bulk load is done. Each
-- B-tree ends with the sort key and id: a keyset page is a range scan.
CREATE INDEX listings_g{{gen}}_newest   ON listings_g{{gen}} (status, created_at, id);
CREATE INDEX listings_g{{gen}}_price    ON listings_g{{gen}} (status, price, id);
CREATE INDEX listings_g{{gen}}_cat_new  ON listings_g{{gen}} (status, category, created_at, id);
CREATE INDEX listings_g{{gen}}_cat_prc  ON listings_g{{gen}} (status, category, price, id);
CREATE INDEX listings_g{{gen}}_sel_new  ON listings_g{{gen}} (seller_id, status, created_at, id);
CREATE INDEX listings_g{{gen}}_sel_prc  ON listings_g{{gen}} (seller_id, status, price, id);
-- The category counts: a batch recounts the available listings of each
-- category it touched, an index-only scan of this (deduplicated) index.
CREATE INDEX listings_g{{gen}}_available ON listings_g{{gen}} (category) WHERE status = 'AVAILABLE';
CREATE INDEX listings_g{{gen}}_tsv      ON listings_g{{gen}} USING gin (tsv);
CREATE INDEX listings_g{{gen}}_attrs    ON listings_g{{gen}} USING gin (attributes jsonb_path_ops);
-- A finer sample of lexemes and attribute pairs: the planner chooses
-- between walking a sort index and fetching the matches from the inverted
-- index by how common it thinks a word is, and the default target leaves
-- the words of a large catalogue's long tail estimated far too common.
ALTER TABLE listings_g{{gen}} ALTER COLUMN tsv SET STATISTICS 1000;
ALTER TABLE listings_g{{gen}} ALTER COLUMN attributes SET STATISTICS 1000;
