-- One generation's owner lists: a row per order and per review, with the
-- owners and the keyset sort as columns and the document as jsonb, so
-- that a page of a user's orders or a seller's reviews is one range scan.
-- {{gen}} is replaced by the generation's id.
CREATE TABLE orders_g{{gen}} (
    id         uuid        PRIMARY KEY,
    lsn        bigint      NOT NULL, -- commit position of the write that made this row
    buyer_id   uuid,                 -- NULL, like seller_id and doc, for a deleted order (a tombstone that keeps its lsn)
    seller_id  uuid,
    status     text        NOT NULL,
    created_at timestamptz NOT NULL, -- in milliseconds, as the document and the page token have it
    doc        jsonb                 -- the orders document (readstore.Order)
);
CREATE TABLE reviews_g{{gen}} (
    id         uuid        PRIMARY KEY,
    lsn        bigint      NOT NULL,
    seller_id  uuid,                 -- NULL, like doc, for a deleted review
    created_at timestamptz NOT NULL,
    doc        jsonb                 -- the reviews document (readstore.Review)
);
