-- Nothing was pending at %(at)s: bronze holds every source commit before it.
update bronze.ingest_state
set caught_up_at = greatest(coalesce(caught_up_at, %(at)s), %(at)s),
    caught_up_lsn = last_commit_lsn
where slot_name = %(slot)s
