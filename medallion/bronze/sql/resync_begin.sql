-- Record a re-sync's intent before it touches the slot (see resync_reason in schema.sql).
update bronze.ingest_state
set resync_reason = coalesce(resync_reason, %(reason)s),
    updated_at = now()
where slot_name = %(slot)s
