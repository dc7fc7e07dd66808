insert into bronze.capture_gap (slot_name, reason, last_commit_lsn, last_commit_ts, resync_lsn, resync_ts)
values (%(slot)s, %(reason)s, %(last_lsn)s::pg_lsn, %(last_ts)s, %(resync_lsn)s::pg_lsn, %(resync_ts)s)
