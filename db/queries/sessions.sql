-- name: CreateSession :exec
INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (@token_hash, @user_id, @expires_at);

-- name: FindSession :one
SELECT user_id, expires_at FROM sessions WHERE token_hash = @token_hash AND expires_at > now();

-- name: DeleteSession :exec
DELETE FROM sessions WHERE token_hash = @token_hash;

-- name: PurgeExpiredSessions :execrows
-- One batch of expired sessions; replicas purging at once skip each other's.
DELETE FROM sessions WHERE token_hash IN (
    SELECT token_hash FROM sessions
    WHERE expires_at < now()
    ORDER BY expires_at
    LIMIT @batch
    FOR UPDATE SKIP LOCKED);
