-- Pending changes of the slot up to a WAL position, oldest first, whole transactions only.
-- Peek does not consume: the slot moves (pg_replication_slot_advance) only after bronze
-- has committed them.
select (lsn - '0/0'::pg_lsn)::bigint as lsn, xid::text::bigint as xid, data
from pg_logical_slot_peek_changes(
    %(slot)s, %(upto)s::pg_lsn, %(max_changes)s,
    'format-version', '2',
    'include-timestamp', 'true',
    'include-xids', 'true',
    'include-types', 'false'
)
