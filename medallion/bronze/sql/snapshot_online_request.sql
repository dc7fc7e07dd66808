-- The rest of a table whose initial snapshot was interrupted: an online snapshot of it
-- (medallion/bronze/online_snapshot.py), taken up by the ingester that resumes the slot.
insert into bronze.online_snapshot (slot_name, bronze_table, schema_name, table_name, reason, key_columns)
values (%(slot)s, %(bronze)s, %(schema)s, %(table)s, %(reason)s, %(key)s::text[])
on conflict (slot_name, bronze_table) where finished_ts is null do nothing
