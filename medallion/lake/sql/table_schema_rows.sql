-- One chunk of bronze.table_schema, in commit order: each captured table's schema from a
-- position on. columns (jsonb) and key_columns (text[]) as JSON text for Spark.
select
    bronze_table,
    schema_name,
    table_name,
    qualified,
    commit_lsn,
    ordinal,
    commit_ts,
    columns::text as columns,
    to_jsonb(key_columns)::text as key_columns,
    replica_identity,
    recorded_at,
    event,
    relid
from {table}
where commit_lsn > $1 and commit_lsn <= $2
order by commit_lsn, ordinal
