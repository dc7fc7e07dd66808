-- The initial snapshot's chunks (medallion/bronze/snapshot.py): one row per block range of a
-- captured table's leaf, planned in the slot's exported snapshot and committed with the ingest
-- state before any chunk is read. A chunk's rows and its state 'copied' are one warehouse
-- transaction; 'online' marks the chunks an interrupted snapshot handed to the online snapshot
-- (medallion/bronze/online_snapshot.py). Idempotent: runs before every initial snapshot.
create table if not exists bronze.snapshot_chunk (
    slot_name     text        not null,
    bronze_table  text        not null,
    chunk         integer     not null,   -- the table's chunks in ordinal order, from 1
    source_table  text        not null,   -- the leaf read, format('%I.%I')
    relid         oid         not null,   -- the leaf, and its file when planned (a rewrite moves tuples)
    filenode      oid         not null,
    first_block   bigint      not null,
    end_block     bigint,                 -- exclusive; null: to the leaf's end
    first_ordinal integer     not null,   -- its rows take first_ordinal, first_ordinal + 1, ...
    rows          bigint      not null,   -- counted in the snapshot when it was planned
    snapshot_lsn  pg_lsn      not null,
    state         text        not null default 'planned' check (state in ('planned', 'copied', 'online')),
    finished_at   timestamptz,
    primary key (slot_name, bronze_table, chunk)
);
