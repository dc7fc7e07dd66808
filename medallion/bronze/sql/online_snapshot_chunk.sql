-- One chunk of an online snapshot (medallion/bronze/online_snapshot.py): the next rows in key
-- order, as bronze stores them, with the key as typed jsonb (where the next chunk starts). The
-- placeholders are filled by psycopg.sql, values as literals (the row expression holds
-- format(...) patterns, so no parameters): the source table, its key columns (qualified by t),
-- the row's JSON expression, and the filter after the last key done (online_snapshot_after.sql;
-- empty for the first chunk). The leaf a row lives in comes from a subquery, so no catalog
-- column can shadow one of the table's own.
select {key_json} as key_json, {row} as full_row,
       (select format('%I.%I', n.nspname, c.relname) from pg_class as c
        join pg_namespace as n on n.oid = c.relnamespace where c.oid = t.tableoid) as source_table
from {table} as t
{where}
order by {t_keys}
limit {limit}
