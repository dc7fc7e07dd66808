-- The block ranges an interrupted initial snapshot copied of a bronze table's leaves, adjacent
-- chunks merged (online_snapshot.copied_rows_filter): (leaf oid, its file then, first block, end
-- block or null for the leaf's end).
with copied as (
    select relid, filenode, first_block, end_block,
           first_block is distinct from lag(end_block) over (partition by relid order by first_block) as starts
    from bronze.snapshot_chunk
    where bronze_table = %(bronze)s and state = 'copied'
      and snapshot_lsn = (select min(snapshot_lsn) from bronze.ingest_state)
),
runs as (
    select *, count(*) filter (where starts) over (partition by relid order by first_block) as run from copied
)
select relid, filenode, min(first_block),
       case when bool_or(end_block is null) then null else max(end_block) end
from runs
group by relid, filenode, run
order by 1, 3
