-- The write model. Postgres is the source of truth; every read document is
-- derived from these tables by the CDC process.

-- Public profile. Credentials live in their own table so that password hashes
-- and emails never enter the publication the CDC decodes.
CREATE TABLE users (
    id           uuid        PRIMARY KEY,
    display_name text        NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 64),
    bio          text        NOT NULL DEFAULT '' CHECK (char_length(bio) <= 500),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_credentials (
    user_id       uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email         text        NOT NULL UNIQUE CHECK (email = lower(email) AND char_length(email) BETWEEN 3 AND 254),
    password_hash text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Opaque bearer tokens; only their SHA-256 is stored.
CREATE TABLE sessions (
    token_hash bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE listings (
    id             uuid        PRIMARY KEY,
    seller_id      uuid        NOT NULL REFERENCES users (id),
    title          text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 140),
    description    text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 5000),
    category       text        NOT NULL CHECK (category ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    condition      text        NOT NULL CHECK (condition IN ('NEW', 'LIKE_NEW', 'GOOD', 'FAIR', 'POOR')),
    price_currency text        NOT NULL CHECK (price_currency ~ '^[A-Z]{3}$'),
    price_minor    bigint      NOT NULL CHECK (price_minor >= 0),
    attributes     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    status         text        NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'SOLD', 'WITHDRAWN')),
    version        bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 90); -- room for HOT updates: status and version change often
CREATE INDEX listings_seller_id_idx ON listings (seller_id);

-- Bytes live in object storage; this row holds the key and what was verified.
CREATE TABLE listing_media (
    id            uuid        PRIMARY KEY,
    listing_id    uuid        NOT NULL REFERENCES listings (id) ON DELETE CASCADE,
    object_key    text        NOT NULL UNIQUE,
    content_type  text        NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    size_bytes    bigint      NOT NULL CHECK (size_bytes > 0),
    status        text        NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'CONFIRMED')),
    width         integer     CHECK (width > 0),
    height        integer     CHECK (height > 0),
    thumbnail_key text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_at  timestamptz,
    CHECK ((status = 'CONFIRMED') = (confirmed_at IS NOT NULL))
);
CREATE INDEX listing_media_listing_id_idx ON listing_media (listing_id);
-- A deleted media row must still name its listing in the WAL, so the CDC
-- knows which listing document to rebuild.
ALTER TABLE listing_media REPLICA IDENTITY FULL;

CREATE TABLE orders (
    id              uuid        PRIMARY KEY,
    buyer_id        uuid        NOT NULL REFERENCES users (id),
    seller_id       uuid        NOT NULL REFERENCES users (id),
    idempotency_key text        NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
    status          text        NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
    total_currency  text        NOT NULL CHECK (total_currency ~ '^[A-Z]{3}$'),
    total_minor     bigint      NOT NULL CHECK (total_minor >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    paid_at         timestamptz,
    shipped_at      timestamptz,
    delivered_at    timestamptz,
    cancelled_at    timestamptz,
    CHECK (buyer_id <> seller_id),
    UNIQUE (buyer_id, idempotency_key)
);
-- Buyer lookups use the unique key's index; the read side serves the lists.
CREATE INDEX orders_seller_id_idx ON orders (seller_id);

-- Title and price are copied at purchase: later listing edits must not
-- rewrite what was bought.
CREATE TABLE order_items (
    order_id       uuid   NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    listing_id     uuid   NOT NULL REFERENCES listings (id),
    title          text   NOT NULL,
    price_currency text   NOT NULL CHECK (price_currency ~ '^[A-Z]{3}$'),
    price_minor    bigint NOT NULL CHECK (price_minor >= 0),
    PRIMARY KEY (order_id, listing_id)
);
CREATE INDEX order_items_listing_id_idx ON order_items (listing_id);

CREATE TABLE reviews (
    id         uuid        PRIMARY KEY,
    order_id   uuid        NOT NULL UNIQUE REFERENCES orders (id),
    seller_id  uuid        NOT NULL REFERENCES users (id),
    author_id  uuid        NOT NULL REFERENCES users (id),
    rating     smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    text        NOT NULL DEFAULT '' CHECK (char_length(comment) <= 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (author_id <> seller_id)
);
CREATE INDEX reviews_seller_id_idx ON reviews (seller_id);
CREATE INDEX reviews_author_id_idx ON reviews (author_id);

-- What the CDC decodes: the tables that feed read documents, and nothing
-- else (no sessions, no credentials).
CREATE PUBLICATION swapmeet_projections
    FOR TABLE users, listings, listing_media, orders, order_items, reviews;
