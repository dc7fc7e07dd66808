-- A long history for the as-of lookup benchmark: %(keys)s customers, each changed in
-- %(versions)s transactions committed one second apart (transaction v changes every key).
insert into bronze.br_customer_cdc (commit_lsn, ordinal, lsn, xid, op, full_row, source_table, commit_ts)
select
    v as commit_lsn,
    k as ordinal,
    v as lsn,
    v as xid,
    case when v = 1 then 'R' else 'U' end as op,
    jsonb_build_object(
        'customer_id', k, 'store_id', 1 + k %% 2, 'first_name', 'FIRST' || k, 'last_name', 'LAST' || k,
        'email', 'v' || v || '.c' || k || '@example.org', 'address_id', 1 + k %% 600, 'activebool', true,
        'create_date', '2022-02-14', 'last_update', '2022-02-15 09:57:20+00', 'active', 1) as full_row,
    'public.customer' as source_table,
    timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => v) as commit_ts
from generate_series(1, %(versions)s) as v
cross join generate_series(1, %(keys)s) as k
