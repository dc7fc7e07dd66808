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
