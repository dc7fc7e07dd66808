-- Whether the publication sends the table (or, for a partitioned table, any of its partitions):
-- its snapshot may begin only then, or a change between a chunk and the ALTER PUBLICATION
-- would be in neither.
select exists (
    select from pg_publication_tables as p
    join pg_namespace as n on n.nspname = p.schemaname
    join pg_class as c on c.relnamespace = n.oid and c.relname = p.tablename
    where p.pubname = %(publication)s
      and (c.oid = %(relid)s::oid or c.oid in (select relid from pg_partition_tree(%(relid)s::oid::regclass)))
)
