-- Read access for the analyst role to one layer (silver or gold): its relations and its
-- as-of functions, now and as later builds create them (default privileges of the role that
-- owns and creates them). Run by that owner after every build, or by an admin FOR it.

-- name: connect
grant connect on database {database} to {analyst}

-- name: schema_usage
grant usage on schema {schema} to {analyst}

-- name: tables
grant select on all tables in schema {schema} to {analyst}

-- name: functions
grant execute on all functions in schema {schema} to {analyst}

-- name: default_tables
alter default privileges for role {owner} in schema {schema} grant select on tables to {analyst}

-- name: default_functions
alter default privileges for role {owner} in schema {schema} grant execute on functions to {analyst}

-- name: layers
-- The layers analysts read that exist in this warehouse, with their owners.
select n.nspname as schema_name, pg_catalog.pg_get_userbyid(n.nspowner) as owner
from pg_catalog.pg_namespace as n
where n.nspname = any(%(schemas)s)
order by n.nspname

-- name: owned_elsewhere
-- Pipeline schemas owned by another role than the pipeline's (made by an admin or an old run).
select n.nspname as schema_name, pg_catalog.pg_get_userbyid(n.nspowner) as owner
from pg_catalog.pg_namespace as n
where n.nspname = any(%(schemas)s)
    and n.nspowner <> (select oid from pg_catalog.pg_roles where rolname = %(pipeline)s)
order by n.nspname
