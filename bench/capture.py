"""Capture against PostgreSQL's own limits (issue 25), side by side in one step of `make bench`.

On a Pagila of its own (databases bench_capture_*, slots medallion_bench_capture*), grown to
the bench's factor, so the step runs alone too (`python -m bench --only capture`) and leaves
the other figures' source untouched:

- the initial snapshot of every captured table into bronze, against its floor: PostgreSQL's
  own COPY of the same rows, as JSON text, into a jsonb column (bench/sql/copy_floor.sql),
  measured on the same tables in the same warehouse just before and after the snapshot;
- `medallion ingest` against pgoutput's decoding of the same changes (scenarios.decode_and_ingest)
  for two shapes of the same number of changes: the scale's one huge source transaction, and
  an OLTP source's many small transactions (bench/sql/small_transactions.sql);
- bronze's size after that snapshot against the source's captured tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace

import psycopg
from psycopg import sql

from bench.scenarios import decode_and_ingest
from medallion import pipeline
from medallion.db import connect, endpoints, named_sql, sql_text
from medallion.selection import CapturedTable, resolve
from medallion.settings import Settings
from medallion.source.catalog import read_tables
from pagila_example import api as example

SOURCE = "bench_capture_source"
SLOT = "medallion_bench_capture"  # the stream's pipeline: both shapes go through it
SNAPSHOT_SLOT = "medallion_bench_capture_snapshot"  # a second pipeline: the snapshot at full size
CHANGES_PER_TRANSACTION = 4  # small_transactions.sql: two inserts and two updates in each


def capture(base: Settings, cluster_dsn: Callable[[str], str], new_database: Callable[[str], str],
            factor: int) -> dict:
    """Every capture figure of issue 25 (module docstring). cluster_dsn names an existing
    database of the bench's cluster; new_database drops and creates one first."""
    stream = replace(base, source_dsn=cluster_dsn(SOURCE), warehouse_dsn=new_database("bench_capture_warehouse"),
                     slot=SLOT, plugin="pgoutput")
    snap = replace(stream, warehouse_dsn=new_database("bench_capture_snapshot"), slot=SNAPSHOT_SLOT)
    try:
        example.load_pagila(stream)  # recreates the source database (its slots go with it)
        pipeline.ingest(stream)  # the slot exists from here: it sees every change below
        began = time.perf_counter()
        example.scale(stream, factor)  # one source transaction (scale's copies are savepoints of it)
        huge = {"generate_seconds": time.perf_counter() - began} | decode_and_ingest(stream, "pgoutput")
        at_full_size = snapshot_vs_floor(snap)  # the source now: Pagila x factor, nothing else
        small = small_transactions(endpoints(stream).source, huge["changes"]) | decode_and_ingest(stream, "pgoutput")
    finally:  # no slot left behind to hold the cluster's WAL (a source never created holds none)
        with suppress(psycopg.OperationalError), psycopg.connect(cluster_dsn(SOURCE), autocommit=True) as conn:
            conn.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots "
                         "where slot_name = any(%s) and not active", [[SLOT, SNAPSHOT_SLOT]])
    return {"factor": factor} | at_full_size | {"huge_transaction": huge, "small_transactions": small}


def snapshot_vs_floor(settings: Settings) -> dict:
    """The initial snapshot of a new pipeline (a warehouse and slot of its own, the slot dropped
    after) against the floor, the best of one COPY just before it and one just after; then
    the sizes."""
    pipeline.prepare_source(settings)
    before = copy_floor(settings)
    report = pipeline.ingest(settings)
    after = copy_floor(settings)
    with connect(endpoints(settings).source, "source", autocommit=True) as conn:  # its WAL is not pinned further
        conn.execute("select pg_drop_replication_slot(%s)", [settings.slot])
    floor = min(before, after, key=lambda run: run["copy_in_seconds"])
    snapshot = {"rows": report.snapshot_rows, "seconds": report.snapshot_seconds,
                "rows_per_s": report.snapshot_rows / report.snapshot_seconds}
    return {"snapshot": snapshot, "floor": floor | {"runs_copy_in_seconds": [before["copy_in_seconds"],
                                                                          after["copy_in_seconds"]]},
            "snapshot_over_floor": snapshot["rows_per_s"] / floor["rows_per_s"],
            "floor_rows_are_snapshot_rows": floor["rows"] == snapshot["rows"], "sizes": sizes(settings)}


def _captured(conn: psycopg.Connection, settings: Settings) -> list[CapturedTable]:
    return resolve(settings.config(), read_tables(conn)).captured


def copy_floor(settings: Settings) -> dict:
    """Every captured table's rows read out of the source as JSON text (row_to_json; timed on
    its own), then COPYed into one jsonb column in the warehouse, in one transaction (timed:
    the floor). Table by table, so at most one table's text is held in memory."""
    statements = named_sql("bench", "copy_floor.sql")
    ends = endpoints(settings)
    out_seconds = in_seconds = 0.0
    rows = text_bytes = 0
    with connect(ends.source, "source") as src, connect(ends.warehouse, "warehouse") as wh:
        src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot, as the snapshot's
        tables = _captured(src, settings)
        for name in ("drop", "schema", "create"):
            wh.execute(statements[name])
        wh.commit()
        for captured in tables:
            began = time.perf_counter()
            select = sql.SQL(statements["out"]).format(table=sql.Identifier(*captured.table.ident))
            with src.cursor() as cur, cur.copy(select) as out:
                data = b"".join(bytes(block) for block in out)
            written = time.perf_counter()
            out_seconds += written - began
            with wh.cursor() as cur, cur.copy(statements["in"]) as into:
                into.write(data)
            in_seconds += time.perf_counter() - written
            rows += data.count(b"\n")  # COPY's text format: one line a row
            text_bytes += len(data)
        began = time.perf_counter()
        wh.commit()
        in_seconds += time.perf_counter() - began
        wh.execute(statements["drop"])
        wh.commit()
    return {"tables": len(tables), "rows": rows, "json_text_bytes": text_bytes, "source_out_seconds": out_seconds,
            "source_out_rows_per_s": rows / out_seconds, "copy_in_seconds": in_seconds,
            "rows_per_s": rows / in_seconds}


def sizes(settings: Settings) -> dict:
    """Bytes of the source's captured tables (with their partitions) and of their bronze
    tables: total with indexes and TOAST, heap, indexes. medallion's own bookkeeping tables
    in the warehouse are left out."""
    statement = sql_text("bench", "relation_sizes.sql")
    ends = endpoints(settings)
    with connect(ends.source, "source") as src, connect(ends.warehouse, "warehouse") as wh:
        captured = _captured(src, settings)
        source = src.execute(statement, {"tables": [sql.Identifier(*c.table.ident).as_string(src)
                                                    for c in captured]}).fetchone()
        bronze = wh.execute(statement, {"tables": [sql.Identifier("bronze", c.bronze).as_string(wh)
                                                   for c in captured]}).fetchone()
    result = {f"{side}_{part}_bytes": value for side, row in (("source", source), ("bronze", bronze))
              for part, value in zip(("total", "heap", "indexes"), row)}
    return result | {"tables": len(captured), "bronze_over_source_total": bronze[0] / source[0],
                     "bronze_over_source_heap": bronze[1] / source[1]}


def small_transactions(source_dsn: str, changes: int) -> dict:
    """At least `changes` row changes on the source as small transactions, committed one by
    one (synchronous_commit off: the WAL and its decoding are the same, the flushes are not)."""
    transactions = -(-changes // CHANGES_PER_TRANSACTION)
    statement = sql.SQL(sql_text("bench", "small_transactions.sql")).format(transactions=sql.Literal(transactions))
    with connect(source_dsn, "source", autocommit=True) as conn:
        conn.execute("set synchronous_commit = off")
        began = time.perf_counter()
        conn.execute(statement)
        seconds = time.perf_counter() - began
    return {"transactions_generated": transactions, "changes_per_transaction": CHANGES_PER_TRANSACTION,
            "generate_seconds": seconds}
