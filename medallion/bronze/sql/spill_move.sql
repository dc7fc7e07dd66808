-- A spilled transaction has committed: its changes join their bronze table with the commit's
-- position and time, in the warehouse transaction that advances the state. {target} is a
-- quoted identifier filled in by psycopg.sql.
insert into bronze.{target} (commit_lsn, ordinal, lsn, xid, op, full_row, old_row, source_table, commit_ts)
select %(commit_lsn)s, ordinal, lsn, xid, op, full_row, old_row, source_table, %(commit_ts)s
from bronze.ingest_spill
where slot_name = %(slot)s and xid = %(xid)s and target = %(target_name)s
order by ordinal
