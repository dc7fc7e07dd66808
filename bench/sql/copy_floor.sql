-- The snapshot's floor (bench/capture.py): PostgreSQL's own COPY of the captured rows, as JSON
-- text, into one jsonb column of a plain (logged, unindexed) warehouse table. {table} is an
-- identifier filled in by psycopg.sql.
-- name: drop
drop schema if exists bench_floor cascade
-- name: schema
create schema bench_floor
-- name: create
create table bench_floor.captured_rows (full_row jsonb not null)
-- name: out
copy (select row_to_json(t) from {table} as t) to stdout
-- name: in
copy bench_floor.captured_rows (full_row) from stdin
