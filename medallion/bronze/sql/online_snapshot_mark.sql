-- A watermark in the change stream: a transactional logical decoding message, delivered by
-- pgoutput with messages 'true' (PostgreSQL 14+) and by wal2json, in commit order. Any role
-- may emit one (PostgreSQL 15: no superuser, no REPLICATION, no table to create).
select pg_logical_emit_message(true, %(prefix)s, %(content)s)::text
