-- `medallion resync --table`: a snapshot of one captured table, asked for in the warehouse. The
-- ingester that runs (or the next one) takes it up; its start is recorded at its first watermark.
insert into bronze.online_snapshot (slot_name, bronze_table, schema_name, table_name, reason, key_columns)
values (%(slot)s, %(bronze)s, %(schema)s, %(table)s, 'resync', %(key)s::text[])
on conflict (slot_name, bronze_table) where finished_ts is null do nothing
returning snapshot_id
