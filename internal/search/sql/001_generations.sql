-- The generations of the search projection. Each generation is a pair of
-- tables (listings_g<id>, categories_g<id>); the views search_listings and
-- search_categories name the live one, and exactly one row is 'live'.
CREATE TABLE search_generations (
    id          bigint      PRIMARY KEY,
    ts_config   text        NOT NULL,           -- the text search configuration its tsvectors use
    state       text        NOT NULL CHECK (state IN ('loading', 'sealed', 'live', 'retired')),
    applied_lsn bigint      NOT NULL DEFAULT 0, -- the highest commit position a batch wrote into it
    created_at  timestamptz NOT NULL DEFAULT now(),
    live_at     timestamptz
);
CREATE UNIQUE INDEX search_generations_one_live ON search_generations ((true)) WHERE state = 'live';
CREATE SEQUENCE search_generation_ids;
