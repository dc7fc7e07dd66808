-- Bytes of the given tables, a partitioned one as the sum of its leaves (pg_partition_tree has
-- no rows for a plain table): total (heap, TOAST, free-space and visibility maps, indexes), the
-- heap alone (main fork), the indexes.
select coalesce(sum(pg_total_relation_size(leaf.relid)), 0)::bigint as total,
       coalesce(sum(pg_relation_size(leaf.relid)), 0)::bigint as heap,
       coalesce(sum(pg_indexes_size(leaf.relid)), 0)::bigint as indexes
from (
    select distinct coalesce(p.relid, t.root) as relid
    from unnest(%(tables)s::regclass[]) as t(root)
    left join lateral pg_partition_tree(t.root) as p on true
    where p.relid is null or p.isleaf
) as leaf
