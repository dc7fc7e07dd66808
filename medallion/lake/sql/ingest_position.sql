-- How far bronze is complete: the ingest state's last commit position (every source transaction
-- up to it is in bronze, those that changed no row of a table too, e.g. a DDL). Read before the
-- tables are exported, so every table's copy reaches at least this far.
select coalesce(max((last_commit_lsn - '0/0'::pg_lsn)::bigint), -1) from bronze.ingest_state
