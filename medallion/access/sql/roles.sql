-- The three login roles of a pipeline. Identifiers are filled in with psycopg.sql (quoted),
-- never formatted into the text; none has SUPERUSER, CREATEDB, CREATEROLE or BYPASSRLS.

-- name: role_exists
select exists (select 1 from pg_catalog.pg_roles where rolname = %(role)s)

-- name: create_capture
-- Capture (source): logical decoding needs REPLICATION; reading tables needs the grants below.
create role {role} login replication nosuperuser nocreatedb nocreaterole nobypassrls

-- name: create_pipeline
-- The pipeline (warehouse): creates bronze, silver and gold, and so owns them.
create role {role} login noreplication nosuperuser nocreatedb nocreaterole nobypassrls

-- name: create_analyst
-- Analysts: read silver and gold. NOINHERIT: should someone grant it a role later, that
-- role's privileges are not used implicitly (keep it a member of nothing: SET ROLE would work).
create role {role} login noinherit noreplication nosuperuser nocreatedb nocreaterole nobypassrls

-- name: analyst_read_only
-- Every transaction of the analyst starts read-only (medallion query also asks for it).
alter role {role} set default_transaction_read_only = on
