-- One generation's tables. {{gen}} is replaced by the generation's id and
-- {{tsconfig}} by its text search configuration (a quoted regconfig literal).
CREATE TABLE listings_g{{gen}} (
    id                    uuid        PRIMARY KEY,
    lsn                   bigint      NOT NULL, -- commit position of the write that made this row
    status                text        NOT NULL, -- '' for a deleted listing (a tombstone that keeps its lsn)
    version               bigint      NOT NULL,
    seller_id             uuid,
    seller_name           text        NOT NULL,
    seller_rating_average float8      NOT NULL,
    seller_rating_count   integer     NOT NULL,
    title                 text        NOT NULL,
    description           text        NOT NULL,
    category              text        NOT NULL,
    previous_category     text,                 -- the category the row counted in before its last write (NULL: none); Apply moves the counts by it
    condition             text        NOT NULL,
    currency              text        NOT NULL,
    price                 bigint      NOT NULL,
    attributes            jsonb       NOT NULL,
    media                 jsonb       NOT NULL,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    tsv                   tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector({{tsconfig}}, title), 'A') || setweight(to_tsvector({{tsconfig}}, description), 'B')
    ) STORED
);
CREATE TABLE categories_g{{gen}} (
    category        text    PRIMARY KEY,
    available_count bigint  NOT NULL DEFAULT 0
);
