-- Indexes for the media background work (see README, "Media").

-- The thumbnail worker's queue: confirmed images that have no thumbnail yet.
CREATE INDEX listing_media_thumbnail_todo_idx ON listing_media (confirmed_at)
    WHERE status = 'CONFIRMED' AND thumbnail_key IS NULL;

-- The sweeper finds stale pending uploads by age.
CREATE INDEX listing_media_pending_idx ON listing_media (created_at)
    WHERE status = 'PENDING';
