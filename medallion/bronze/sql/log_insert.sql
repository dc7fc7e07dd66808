insert into bronze.ingest_log (slot_name, kind, first_commit_lsn, last_commit_lsn, transactions, changes, started_at)
values (%(slot)s, %(kind)s, %(first_lsn)s::pg_lsn, %(last_lsn)s::pg_lsn, %(transactions)s, %(changes)s, %(started_at)s)
