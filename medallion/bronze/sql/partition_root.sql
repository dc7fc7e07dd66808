-- The captured root of a relation named in the change stream (wal2json names leaf partitions).
select rn.nspname as schema_name, r.relname as table_name, c.relreplident
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
cross join lateral pg_partition_root(c.oid) as root(oid)
join pg_class as r on r.oid = root.oid
join pg_namespace as rn on rn.oid = r.relnamespace
where n.nspname = %(schema)s and c.relname = %(table)s
