insert into bronze.ingest_state (
    slot_name, source_system_id, source_database, source_database_oid,
    snapshot_lsn, snapshot_ts, last_commit_lsn, last_commit_ts, changes_total, plugin)
values (
    %(slot)s, %(system_id)s, %(database)s, %(database_oid)s,
    %(lsn)s::pg_lsn, %(ts)s, %(lsn)s::pg_lsn, %(ts)s, %(changes)s, %(plugin)s)
