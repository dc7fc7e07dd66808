-- One chunk of a bronze change table, in commit order, typed for Iceberg: jsonb as its text
-- (Spark parses it with from_json), op as a string.
select
    commit_lsn,
    ordinal,
    lsn,
    xid,
    op::text as op,
    full_row::text as full_row,
    old_row::text as old_row,
    source_table,
    commit_ts,
    load_ts
from {table}
where commit_lsn > $1 and commit_lsn <= $2
order by commit_lsn, ordinal
