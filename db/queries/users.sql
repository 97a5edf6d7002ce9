-- name: CreateUser :exec
INSERT INTO users (id, display_name) VALUES (@id, @display_name);

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
