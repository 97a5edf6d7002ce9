#!/bin/sh
# Mounted into the postgres image's /docker-entrypoint-initdb.d by
# docker-compose.yml: it runs once, when the data directory is created, as
# the image's superuser. It makes the role that swapmeet's commands connect
# as (SWAPMEET_ROLE, never a superuser), with SWAPMEET_ROLE_ATTRIBUTES
# (REPLICATION for the write side, whose CDC streams the WAL), and gives it
# the database, so that its migrations own what they create. The superuser
# is then only the operator's. EXECUTE on pg_logical_emit_message is taken
# from PUBLIC and given to that role alone: no other role can pass its
# changes off as the application's requests in the history.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v role="$SWAPMEET_ROLE" -v password="$SWAPMEET_ROLE_PASSWORD" \
	-v attributes="${SWAPMEET_ROLE_ATTRIBUTES:-}" -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS :attributes PASSWORD :'password';
ALTER DATABASE :"db" OWNER TO :"role";
-- Only the application may annotate its transactions (docs/history.md):
-- pg_logical_emit_message is executable by PUBLIC out of the box.
REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text),
                           pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO :"role";
SQL
