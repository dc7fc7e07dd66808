-- The online snapshots of a slot that are not finished: resumed after their last key.
select snapshot_id, bronze_table, schema_name, table_name, reason, key_columns, last_key, chunks, rows,
       started_lsn is not null
from bronze.online_snapshot
where slot_name = %(slot)s and finished_ts is null
order by snapshot_id
