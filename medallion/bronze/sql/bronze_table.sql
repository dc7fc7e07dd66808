-- One bronze table per captured source table. {table} and the names derived from it are
-- quoted identifiers filled in by psycopg.sql.
create table if not exists bronze.{table} (
    commit_lsn   bigint      not null,  -- source commit position: end of the commit record
    ordinal      integer     not null,  -- position of the change within its transaction
    lsn          bigint      not null,  -- the change's own WAL position (COPY rows share one)
    xid          bigint,                -- source transaction id (null for snapshot rows)
    op           char(1)     not null,  -- R snapshot, I, U, D, T truncate, E re-sync epoch (see below)
    full_row     jsonb,                 -- {{column: value}}: new row (R/I/U), old row (D), null (T, E)
    old_row      jsonb,                 -- U only: the row before the update (replica identity)
    source_table text        not null,  -- the table the change was made to (a leaf partition)
    commit_ts    timestamptz not null,  -- source commit time (snapshot time for R rows)
    load_ts      timestamptz not null default now(),
    constraint {pkey} primary key (commit_lsn, ordinal),
    -- E marks a re-sync after a lost slot: the R rows at the same commit_lsn are the whole table
    -- as it was then; what is not among them was gone (medallion/bronze/resync.py)
    constraint {op_check} check (op in ('R', 'I', 'U', 'D', 'T', 'E'))
);

create or replace trigger {append_only}
    before update or delete on bronze.{table}
    for each statement execute function bronze.reject_rewrite();
