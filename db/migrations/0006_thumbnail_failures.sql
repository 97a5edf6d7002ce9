-- Thumbnail failures (see docs/media.md, "Thumbnails"): an image whose
-- thumbnail fails is retried a bounded number of times, with a pause, and
-- then marked failed with its reason; the queue serves images with fewer
-- attempts first, so a failing one never holds up the next.
ALTER TABLE listing_media
    ADD COLUMN thumbnail_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN thumbnail_retry_at timestamptz,
    ADD COLUMN thumbnail_error text;

DROP INDEX listing_media_thumbnail_todo_idx;
CREATE INDEX listing_media_thumbnail_todo_idx ON listing_media (thumbnail_attempts, confirmed_at)
    WHERE status = 'CONFIRMED' AND thumbnail_key IS NULL;
