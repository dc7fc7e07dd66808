-- What the capture role needs on the source database, run by an admin (or the tables' owner):
-- to connect, to see the captured schemas, to read each captured table for the initial
-- snapshot, and to read the server's identity (bronze refuses changes from another server).

-- name: connect
grant connect on database {database} to {role}

-- name: schema_usage
grant usage on schema {schema} to {role}

-- name: table_select
grant select on table {table} to {role}

-- name: server_identity
grant execute on function pg_catalog.pg_control_system() to {role}
