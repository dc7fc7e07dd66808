-- What the capture role needs on the source database, run by an admin (or the tables' owner):
-- to connect, to see the captured schemas, and to read each captured table for the initial
-- snapshot. The change stream itself needs only the role's REPLICATION attribute.

-- name: connect
grant connect on database {database} to {role}

-- name: schema_usage
grant usage on schema {schema} to {role}

-- name: table_select
grant select on table {table} to {role}

