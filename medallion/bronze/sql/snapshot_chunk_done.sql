-- A chunk's rows are in bronze: recorded in their warehouse transaction, with the state's count.
with done as (
    update bronze.snapshot_chunk set state = 'copied', finished_at = now()
    where slot_name = %(slot)s and bronze_table = %(bronze)s and chunk = %(chunk)s and state = 'planned'
    returning 1
)
update bronze.ingest_state set changes_total = changes_total + %(rows)s, updated_at = now()
where slot_name = %(slot)s and exists (select from done)
