-- The initial snapshot is whole (or its rest handed to online snapshots): bronze is complete
-- to the slot's consistent point, where the stream starts.
update bronze.ingest_state set last_commit_lsn = snapshot_lsn, last_commit_ts = snapshot_ts, updated_at = now()
where slot_name = %(slot)s
