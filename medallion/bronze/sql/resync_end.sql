-- The re-sync's epoch is written: bronze follows the new slot from its consistent point.
update bronze.ingest_state
set resync_reason = null,
    updated_at = now()
where slot_name = %(slot)s
