-- A chunk's rows are in bronze (this same warehouse transaction): the snapshot goes on after
-- its last key, or is finished at its high watermark.
update bronze.online_snapshot
set last_key = %(last_key)s::jsonb,
    chunks = chunks + 1,
    rows = rows + %(rows)s,
    finished_lsn = case when %(final)s then %(lsn)s end,
    finished_ts = case when %(final)s then %(ts)s::timestamptz end
where slot_name = %(slot)s and bronze_table = %(bronze)s and finished_ts is null
