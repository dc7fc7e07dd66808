-- Every relation a captured table consists of: the table itself and all its partitions.
-- (pg_partition_tree returns nothing for a table that is not partitioned.)
with roots as (
    select root.oid
    from unnest(%(tables)s::text[]) as t(name)
    join pg_namespace as rn on rn.nspname = %(schema)s
    join pg_class as root on root.relnamespace = rn.oid and root.relname = t.name
),
relations as (
    select oid from roots
    union
    select p.relid from roots cross join lateral pg_partition_tree(roots.oid) as p
)
select n.nspname as schema_name, c.relname as table_name, c.relreplident
from relations as r
join pg_class as c on c.oid = r.oid
join pg_namespace as n on n.oid = c.relnamespace
order by 1, 2
