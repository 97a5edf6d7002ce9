-- The schema's owner runs the migrations; the application's login role is
-- a member of swapmeet_app and may read and write the rows, nothing more:
-- no DDL, no TRUNCATE, no change of ownership (docs/limits.md, "Least privilege").
-- Tables a later migration creates are granted the same way by default.
-- Where no swapmeet_app role exists (one role owns the schema and runs the
-- application, as before), there is nothing to grant.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'swapmeet_app') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO swapmeet_app;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO swapmeet_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO swapmeet_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO swapmeet_app;
  END IF;
END
$$;
