-- The slot as the source sees it: how far it lags, the WAL it holds, and whether that WAL is still safe.
select
    s.slot_name,
    s.plugin,
    s.active,
    s.active_pid,
    s.confirmed_flush_lsn::text as confirmed_flush_lsn,
    pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint as lag_bytes,
    -- WAL the source keeps for the slot (from restart_lsn): what fills its disk while capture stops
    s.restart_lsn::text as restart_lsn,
    pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint as retained_wal_bytes,
    s.wal_status,
    s.safe_wal_size
from pg_replication_slots as s
where s.slot_name = %(slot)s
