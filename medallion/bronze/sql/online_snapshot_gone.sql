-- The snapshot's last chunk is in bronze (this transaction): a key bronze still holds as live
-- whose last row is older than the snapshot's start, and that no chunk brought, is not in the
-- table any more (its delete never reached bronze): it ends here, as a D row at the high
-- watermark, after the chunk's R rows. A key is live after its last row unless that is a delete,
-- a truncate came after it, or a re-sync epoch after it did not hold it (resync.py). An update
-- that changed the key ends its old key. The placeholders: the bronze table, and the key's JSON
-- values as a jsonb array (old_key: of the row before an update).
with changes as (
    select commit_lsn, ordinal, op, full_row, source_table, {key} as key from {table} where op in ('R', 'I', 'U', 'D')
    union all
    select commit_lsn, ordinal, 'D', old_row, source_table, {old_key} from {table}
    where op = 'U' and old_row is not null and {old_key} is distinct from {key}
),
latest as (
    select distinct on (key) * from changes order by key, commit_lsn desc, ordinal desc, op
),
ends as (
    select (select array[commit_lsn, ordinal] from {table} where op = 'T'
            order by commit_lsn desc, ordinal desc limit 1) as truncated_at,
           coalesce((select max(commit_lsn) from {table} where op = 'E'), -1) as epoch_lsn,
           coalesce((select started_lsn from bronze.online_snapshot
                     where slot_name = %(slot)s and bronze_table = %(bronze)s and finished_ts is null), -1)
               as started_lsn
)
insert into {table} (commit_lsn, ordinal, lsn, xid, op, full_row, old_row, source_table, commit_ts)
select %(lsn)s, %(ordinal)s + row_number() over (order by l.key), %(event_lsn)s, null, 'D', l.full_row, null,
       l.source_table, %(ts)s
from latest as l, ends as e
where l.op <> 'D'
  and l.commit_lsn < e.started_lsn
  and (e.truncated_at is null or array[l.commit_lsn, l.ordinal::bigint] > e.truncated_at)
  and l.commit_lsn >= e.epoch_lsn
