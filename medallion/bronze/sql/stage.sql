-- Per-session staging of raw wal2json changes; emptied by every commit.
create temporary table if not exists medallion_stage (
    commit_lsn   bigint      not null,
    ordinal      integer     not null,
    lsn          bigint      not null,
    xid          bigint      not null,
    commit_ts    timestamptz not null,
    target       text        not null,  -- bronze table
    source_table text        not null,
    change       jsonb       not null   -- one wal2json format-version 2 object
) on commit delete rows
