-- Every relation a query can name (tables, views, materialized views, foreign tables),
-- so that a FOR SYSTEM_TIME clause on a missing name says "does not exist" rather than
-- "has no history". The search path resolves unqualified names as PostgreSQL would.
with relations as (
    select
        n.nspname as table_schema,
        c.relname as table_name
    from pg_catalog.pg_class as c
    inner join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'v', 'm', 'f')
        and n.nspname !~ '^pg_toast'
),

final as (
    select table_schema, table_name from relations
)

select * from final order by table_schema, table_name
