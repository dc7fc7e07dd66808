-- Online snapshots (medallion/bronze/online_snapshot.py): one table read in key-ordered chunks
-- while the stream runs, each chunk between two watermarks written into the stream. One row
-- per snapshot; last_key and the counters are updated in the warehouse transaction that writes
-- the chunk's rows into bronze, so a re-run resumes after the last chunk bronze holds.
-- Idempotent: runs before every ingest that may take one.
create table if not exists bronze.online_snapshot (
    snapshot_id   bigserial   primary key,
    slot_name     text        not null,
    bronze_table  text        not null,
    schema_name   text        not null,
    table_name    text        not null,
    reason        text        not null,   -- published later, selected later, resync
    key_columns   text[]      not null,   -- the chunks' order: the primary key, else the declared key
    last_key      jsonb,                  -- the last key whose chunk is in bronze; null before the first
    chunks        integer     not null default 0,
    rows          bigint      not null default 0,
    requested_at  timestamptz not null default now(),
    started_lsn   bigint,                 -- the stream position of its first change or low watermark
    started_ts    timestamptz,
    finished_lsn  bigint,                 -- the high watermark of its last chunk
    finished_ts   timestamptz             -- the table's history is complete from here on
);
create unique index if not exists online_snapshot_one_open
    on bronze.online_snapshot (slot_name, bronze_table) where finished_ts is null;
