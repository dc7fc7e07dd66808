update bronze.ingest_state
set last_commit_lsn = %(lsn)s::pg_lsn,
    last_commit_ts = %(ts)s,
    changes_total = changes_total + %(changes)s,
    updated_at = now()
where slot_name = %(slot)s
