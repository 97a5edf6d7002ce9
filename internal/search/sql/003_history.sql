-- The history of every object: one row per committed row change, written
-- by the CDC from the WAL with the transaction's annotation (who, through
-- which request). Unlike the projections it cannot be rebuilt (the WAL
-- before a snapshot is gone), so it lives outside the generations: no
-- rebuild drops or rewrites it. Append-only, but for lost_to.
--
-- Partitioned by month of commit time, so that retention drops whole
-- partitions (search.Store.PruneHistory); the CDC creates each month's
-- partition before its first write (EnsureHistoryPartitions).
CREATE TABLE history (
    position        bigint      NOT NULL, -- the read side's position of the transaction's commit
    seq             integer     NOT NULL, -- the change's ordinal in its transaction, from 1
    commit_time     timestamptz NOT NULL,
    object_type     text        NOT NULL CHECK (object_type IN ('listing', 'order', 'user', 'review')),
    object_id       uuid        NOT NULL,
    operation       text        NOT NULL CHECK (operation IN ('CREATED', 'UPDATED', 'DELETED')),
    changes         jsonb       NOT NULL, -- [{"field", "before", "after"}], values as text
    annotated       boolean     NOT NULL, -- false: the transaction carried no annotation (SQL, a migration)
    actor           text        NOT NULL DEFAULT '', -- a user id or 'system'
    rpc             text        NOT NULL DEFAULT '',
    request_id      text        NOT NULL DEFAULT '',
    idempotency_key text        NOT NULL DEFAULT '',
    trace_parent    text        NOT NULL DEFAULT '',
    -- Set when the database history the change was recorded in was
    -- abandoned past it (a failover or a restore): the history the read
    -- side moved onto, "system/timeline".
    lost_to         text,
    -- Replays write the same (position, seq): the second write is a no-op.
    PRIMARY KEY (position, seq, commit_time)
) PARTITION BY RANGE (commit_time);

-- An object's history, newest first, in keyset pages.
CREATE INDEX history_object_idx ON history (object_type, object_id, position DESC, seq DESC);
