-- The heap relations holding a table's rows (its leaf partitions, or the table itself), with
-- their size in blocks now: rows the snapshot sees lie below it (a table only shrinks when
-- VACUUM truncates pages no snapshot still needs).
select format('%%I.%%I', n.nspname, c.relname) as qualified, n.nspname, c.relname,
       pg_relation_size(c.oid) / current_setting('block_size')::bigint as blocks,
       c.oid as relid, pg_relation_filenode(c.oid) as filenode,
       has_table_privilege(c.oid, 'select') as readable  -- else read through the root
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where c.relkind = 'r'
  and c.oid in (select relid from pg_partition_tree(%(relid)s::oid::regclass) where isleaf
                union all select %(relid)s::oid)
order by 1
