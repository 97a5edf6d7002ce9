-- Indexes for the per-seller quotas and the session purge (see README,
-- "Limits and abuse").

-- Listings a seller created in the last day.
CREATE INDEX listings_seller_created_idx ON listings (seller_id, created_at);

-- A seller's active listings.
CREATE INDEX listings_seller_available_idx ON listings (seller_id) WHERE status = 'AVAILABLE';

-- The purge finds expired sessions by expiry.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
