-- Accent folding: each generation stems with a configuration derived from
-- the one its setting names, with unaccent before the stemmer for words
-- that are not plain ASCII (see Store.ensureFolded).
CREATE EXTENSION IF NOT EXISTS unaccent;
