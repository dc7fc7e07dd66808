-- wal2json's column arrays become flat {{column: value}} objects. An UPDATE omits unchanged
-- TOASTed columns from its new row: they are filled in from the old row (replica identity FULL),
-- so full_row is always the complete row.
with staged as (
    select
        s.*,
        s.change ->> 'action' as op,
        (select jsonb_object_agg(c ->> 'name', c -> 'value')
           from jsonb_array_elements(s.change -> 'columns') as c) as new_row,
        (select jsonb_object_agg(c ->> 'name', c -> 'value')
           from jsonb_array_elements(s.change -> 'identity') as c) as identity_row
    from pg_temp.medallion_stage as s
    where s.target = {target_name}
)
insert into bronze.{target} (commit_lsn, ordinal, lsn, xid, op, full_row, old_row, source_table, commit_ts)
select
    commit_lsn, ordinal, lsn, xid, op,
    case op
        when 'D' then identity_row
        when 'T' then null
        else coalesce(identity_row, '{{}}'::jsonb) || new_row
    end,
    case when op = 'U' then identity_row end,
    source_table, commit_ts
from staged
order by commit_lsn, ordinal
