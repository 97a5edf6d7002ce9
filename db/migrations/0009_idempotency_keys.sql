-- The idempotency keys of the creating writes that take one
-- (CreateListing, CreateMediaUpload): per caller and operation, the digest
-- of the request a key was first used with and the object it made. A retry
-- with the same key and request gets that object again; the same key with
-- another request is refused. Kept a day (app.Commands.PurgeSessions
-- purges them with the expired sessions). Not published: nothing on the
-- read side needs them.
CREATE TABLE idempotency_keys (
    owner_id   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    operation  text        NOT NULL CHECK (operation IN ('CreateListing', 'CreateMediaUpload')),
    key        text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 128),
    digest     bytea       NOT NULL CHECK (octet_length(digest) = 32),
    object_id  uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, operation, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
