insert into bronze.table_schema (
    bronze_table, schema_name, table_name, qualified, commit_lsn, ordinal, commit_ts, columns, key_columns,
    replica_identity, event, relid)
values (
    %(bronze)s, %(schema)s, %(table)s, %(qualified)s, %(lsn)s, %(ordinal)s, %(ts)s, %(columns)s::jsonb,
    %(key)s::text[], %(identity)s, %(event)s, %(relid)s)
on conflict do nothing
