-- The epoch row of a re-sync: the R rows at the same commit_lsn are the whole table as it was.
-- {table} is a quoted identifier.
insert into {table} (commit_lsn, ordinal, lsn, xid, op, full_row, old_row, source_table, commit_ts)
values (%(lsn)s, 0, %(lsn)s, null, 'E', null, null, %(source_table)s, %(ts)s)
