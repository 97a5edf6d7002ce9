-- Updates of a listing carry its old row in the WAL, so the CDC can tell a
-- price edit (which leaves the seller's listing counts alone) from a status
-- change (which does not), and rebuild the seller's profile only for the latter.
ALTER TABLE listings REPLICA IDENTITY FULL;
