-- Captured tables with what capture needs to know: identity, key, partitions.
select
    c.relname as table_name,
    c.relkind,
    c.relreplident,
    exists (select 1 from pg_constraint k where k.conrelid = c.oid and k.contype = 'p') as has_pkey,
    coalesce(
        (select array_agg(p.relid::regclass::text order by p.relid::regclass::text)
           from pg_partition_tree(c.oid) as p
          where p.isleaf and p.relid <> c.oid
            and (select r.relreplident from pg_class r where r.oid = p.relid) <> 'f'),
        '{}') as partitions_without_full_identity
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where n.nspname = %(schema)s and c.relname = any(%(tables)s)
