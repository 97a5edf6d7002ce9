-- name: CreateUser :one
INSERT INTO users (id, display_name) VALUES (@id, @display_name) RETURNING created_at;

-- name: FindUserProfile :one
-- The profile as the write side has it, for the answer to a sign-in when
-- the read side cannot give it.
SELECT id, display_name, bio, created_at FROM users WHERE id = @id;

-- name: CreateCredentials :exec
INSERT INTO user_credentials (user_id, email, password_hash) VALUES (@user_id, @email, @password_hash);

-- name: FindCredentialsByEmail :one
SELECT user_id, password_hash FROM user_credentials WHERE email = @email;

-- name: UpdateProfile :one
UPDATE users
SET display_name = coalesce(sqlc.narg(display_name), display_name),
    bio          = coalesce(sqlc.narg(bio), bio),
    updated_at   = now()
WHERE id = @id
RETURNING id;
