-- An online snapshot begins: at the stream position of the transaction that carries this mark
-- (the table's first captured change, or the first chunk's low watermark). A snapshot asked for
-- by `medallion resync --table` is already recorded (its request): it gets its start here.
insert into bronze.online_snapshot (slot_name, bronze_table, schema_name, table_name, reason, key_columns,
                                    started_lsn, started_ts)
values (%(slot)s, %(bronze)s, %(schema)s, %(table)s, %(reason)s, %(key)s::text[], %(lsn)s, %(ts)s)
on conflict (slot_name, bronze_table) where finished_ts is null do update
    set started_lsn = coalesce(bronze.online_snapshot.started_lsn, excluded.started_lsn),
        started_ts = coalesce(bronze.online_snapshot.started_ts, excluded.started_ts),
        key_columns = excluded.key_columns
