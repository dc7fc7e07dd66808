-- System-versioned tables: base (or partitioned) tables, in any schema, with both
-- sys_start and sys_end of type timestamptz. Views are left out on purpose: a view of
-- current rows that exposes sys_start/sys_end would answer AS OF wrongly, silently.
-- Partitions are left out: queries name the partitioned parent.
with candidate_columns as (
    select
        a.attrelid,
        a.attname
    from pg_catalog.pg_attribute as a
    where a.attname in ('sys_start', 'sys_end')
        and a.atttypid = 'pg_catalog.timestamptz'::regtype
        and a.attnum > 0
        and not a.attisdropped
),

versioned as (
    select
        n.nspname as table_schema,
        c.relname as table_name
    from pg_catalog.pg_class as c
    inner join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    inner join candidate_columns as cc on cc.attrelid = c.oid
    where c.relkind in ('r', 'p')
        and not c.relispartition
        and n.nspname not in ('pg_catalog', 'information_schema')
        and n.nspname !~ '^pg_toast'
    group by n.nspname, c.relname
    having count(distinct cc.attname) = 2
),

final as (
    select table_schema, table_name from versioned
)

select * from final order by table_schema, table_name
