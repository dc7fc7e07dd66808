-- The initial snapshot's chunks of a slot, per bronze table: copied, planned (not yet), all.
select bronze_table, count(*) filter (where state = 'copied'), count(*) filter (where state = 'planned'), count(*),
       coalesce(sum(rows) filter (where state = 'copied'), 0)
from bronze.snapshot_chunk
where slot_name = %(slot)s
group by bronze_table
order by bronze_table
