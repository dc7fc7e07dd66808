-- While the initial snapshot's chunks land, bronze is complete to no position: a build applies
-- nothing of a half-copied table (dbt's medallion_bronze_high takes the state's position).
update bronze.ingest_state set last_commit_lsn = '0/0'::pg_lsn, updated_at = now() where slot_name = %(slot)s
