#!/bin/sh
# Mounted into the postgres image's /docker-entrypoint-initdb.d by
# docker-compose.yml: it runs once, when the data directory is created, as
# the image's superuser, so that the superuser is only the operator's.
#
# It makes the role that swapmeet's processes connect as (SWAPMEET_ROLE,
# never a superuser), with SWAPMEET_ROLE_ATTRIBUTES (REPLICATION for the
# write side, whose CDC streams the WAL).
#
# With SWAPMEET_OWNER_ROLE (the write side), the schema has an owner of its
# own, which only the migrations connect as: it owns the database, and the
# processes' role is a member of swapmeet_app, which the migrations grant
# the rows' DML to and nothing else. Without it (the search store), the
# processes' role owns the database.
#
# EXECUTE on pg_logical_emit_message is taken from PUBLIC and given to the
# processes alone (swapmeet_app, or the role): no other role can pass its
# changes off as the application's requests in the history.
set -eu
if [ -n "${SWAPMEET_OWNER_ROLE:-}" ]; then
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
		-v role="$SWAPMEET_ROLE" -v password="$SWAPMEET_ROLE_PASSWORD" \
		-v attributes="${SWAPMEET_ROLE_ATTRIBUTES:-}" -v db="$POSTGRES_DB" \
		-v owner="$SWAPMEET_OWNER_ROLE" -v owner_password="$SWAPMEET_OWNER_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'owner_password';
ALTER DATABASE :"db" OWNER TO :"owner";
CREATE ROLE swapmeet_app NOLOGIN;
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS :attributes PASSWORD :'password' IN ROLE swapmeet_app;
-- Only the application may annotate its transactions (docs/history.md):
-- pg_logical_emit_message is executable by PUBLIC out of the box.
REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text),
                           pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO swapmeet_app;
SQL
	exit 0
fi
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v role="$SWAPMEET_ROLE" -v password="$SWAPMEET_ROLE_PASSWORD" \
	-v attributes="${SWAPMEET_ROLE_ATTRIBUTES:-}" -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS :attributes PASSWORD :'password';
ALTER DATABASE :"db" OWNER TO :"role";
REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text),
                           pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO :"role";
SQL
