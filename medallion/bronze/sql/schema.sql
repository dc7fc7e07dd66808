-- Bronze bookkeeping in the warehouse. Idempotent: runs before every ingest.
create schema if not exists bronze;

-- How far bronze has got, one row per replication slot feeding this warehouse. It is updated in
-- the same transaction as the bronze rows it accounts for: that is what makes delivery exactly-once.
create table if not exists bronze.ingest_state (
    slot_name           text primary key,
    source_system_id    text not null,       -- pg_control_system().system_identifier of the source
    source_database     text not null,
    source_database_oid oid not null,         -- changes when the source database is recreated
    snapshot_lsn        pg_lsn not null,      -- consistent point of the initial snapshot
    snapshot_ts         timestamptz not null,
    last_commit_lsn     pg_lsn not null,      -- end of the last source commit written to bronze
    last_commit_ts      timestamptz,
    changes_total       bigint not null default 0,
    updated_at          timestamptz not null default now()
);

-- One row per committed batch: what it held and how long it took (status and throughput).
create table if not exists bronze.ingest_log (
    batch_id         bigserial primary key,
    slot_name        text not null,
    kind             text not null check (kind in ('snapshot', 'stream')),
    first_commit_lsn pg_lsn,
    last_commit_lsn  pg_lsn,
    transactions     integer not null,
    changes          integer not null,
    started_at       timestamptz not null,
    finished_at      timestamptz not null default clock_timestamp()
);

-- Bronze is append-only: rows are facts about the source's past and are never rewritten.
create or replace function bronze.reject_rewrite() returns trigger
language plpgsql as $$
begin
    raise exception 'bronze.% is append-only: % is not allowed', tg_table_name, tg_op
        using hint = 'to start over, drop the bronze schema (medallion reset)';
end
$$;

-- What bronze knows of each captured table's schema, over time: the source's columns (name,
-- declared type, the type silver stores it as, not null), its key and replica identity, from
-- the position in the change stream where that schema began to hold. Silver is built from
-- bronze alone: from these rows and the change tables.
create table if not exists bronze.table_schema (
    bronze_table     text        not null,  -- br_<table>_cdc: where the table's changes land
    schema_name      text        not null,  -- the source table, as its catalog names it
    table_name       text        not null,
    qualified        text        not null,  -- format('%I.%I'): bronze rows' source_table for the root
    commit_lsn       bigint      not null,  -- holds for changes at (commit_lsn, ordinal) and later
    ordinal          integer     not null default 0,
    commit_ts        timestamptz not null,
    columns          jsonb       not null,  -- [{name, type, warehouse_type, not_null}], source order
    key_columns      text[]      not null,  -- primary key (or replica identity index); {} without one
    replica_identity text        not null,  -- d default, f full, i index, n nothing
    recorded_at      timestamptz not null default now(),
    primary key (bronze_table, commit_lsn, ordinal)
);
create index if not exists table_schema_by_source on bronze.table_schema (schema_name, table_name, commit_lsn);

-- Source tables the ingester has seen and left out (not selected when it saw them). A table
-- that is selected later existed before its first captured change: its rows must be
-- snapshotted, not assumed empty. Tables never seen here are new: captured from their first change.
create table if not exists bronze.uncaptured_table (
    oid        bigint primary key,
    qualified  text        not null,
    seen_lsn   bigint      not null,
    seen_at    timestamptz not null default now()
);

do $append_only$
declare
    name text;
begin
    foreach name in array array['table_schema'] loop
        execute format('create or replace trigger %I before update or delete on bronze.%I '
                       'for each statement execute function bronze.reject_rewrite()',
                       name || '_append_only', name);
    end loop;
end
$append_only$;

-- The output plugin a slot was created with; bronze made before this column existed used wal2json.
alter table bronze.ingest_state add column if not exists plugin text not null default 'wal2json';

-- Where earlier versions parked a source transaction too large to hold in memory until its
-- commit (moved into bronze at the commit: every change written twice). No longer written: such
-- a transaction now waits in the ingester's local spill files (medallion/bronze/spill.py). Kept
-- so that an ingester clears at its start the rows an older one left (the server sends every
-- unconfirmed transaction again).
create table if not exists bronze.ingest_spill (
    slot_name    text    not null,
    xid          bigint  not null,
    target       text    not null,
    ordinal      integer not null,
    lsn          bigint  not null,
    op           char(1) not null,
    full_row     jsonb,
    old_row      jsonb,
    source_table text    not null,
    primary key (slot_name, xid, target, ordinal)
);

-- What recorded a schema: the initial snapshot, the DDL itself (create, alter, drop: the
-- source's event trigger, at the DDL's own position), or a later observation (a Relation
-- message, or a catalog check when no trigger is installed); and the source table's OID.
alter table bronze.table_schema add column if not exists event text not null default 'snapshot';
alter table bronze.table_schema add column if not exists relid bigint;

-- Gaps in the capture: a slot that was dropped or invalidated (its WAL removed) before bronze
-- had everything, and the re-sync that took a new snapshot after it. What the source went
-- through between last_commit_ts and resync_ts is not known, only where it ended up.
create table if not exists bronze.capture_gap (
    gap_id           bigserial primary key,
    slot_name        text        not null,
    reason           text        not null,  -- dropped, invalidated
    last_commit_lsn  pg_lsn      not null,  -- the last source commit bronze has from before the gap
    last_commit_ts   timestamptz,
    resync_lsn       pg_lsn      not null,  -- the re-sync snapshot's consistent point (its E and R rows)
    resync_ts        timestamptz not null,
    recorded_at      timestamptz not null default now()
);

-- When the ingester last found nothing pending: every source commit before caught_up_at is in
-- bronze (up to caught_up_lsn). An idle source moves silver's horizon forward with it.
alter table bronze.ingest_state add column if not exists caught_up_at timestamptz;
alter table bronze.ingest_state add column if not exists caught_up_lsn pg_lsn;

-- A re-sync under way: set (to why the slot was lost) and committed before the old slot is
-- dropped and the new one created, cleared in the transaction that writes the new epoch. While
-- it is set, the slot on the source may be one the re-sync created and never filled: bronze
-- cannot resume from it, and the next `resync` (or `ingest`/`run`) finishes the re-sync.
alter table bronze.ingest_state add column if not exists resync_reason text;
