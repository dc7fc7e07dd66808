"""`medallion demo`: from nothing to a report, on the embedded default.

up -> load Pagila -> ingest (initial snapshot) -> build silver and gold -> a burst of source
changes -> run again -> report: rows per layer, top months, and time travel (one customer and
one mart value before and after the burst).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from psycopg import sql

from medallion import pipeline
from medallion.db import connect, endpoints
from medallion.settings import Settings
from medallion.sqlfiles import named_sql
from pagila_example import api

DEMO_CUSTOMER = 1
DEMO_STORE, DEMO_MONTH = 1, date(2022, 7, 1)  # where the burst's new payment lands


@dataclass
class DemoReport:
    steps: list[tuple[str, float]] = field(default_factory=list)  # (step, seconds)
    snapshot_rows: int = 0
    snapshot_rows_per_s: float = 0.0
    burst_changes: int = 0
    layers: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    top_months: list[tuple[date, object, int]] = field(default_factory=list)
    before: datetime | None = None
    email_before: str | None = None
    email_now: str | None = None
    mart_before: tuple | None = None
    mart_now: tuple | None = None
    seconds: float = 0.0


def burst(settings: Settings) -> list[str]:
    """The scripted source changes, each step its own transaction; returns the step names."""
    steps = named_sql("pagila_example", "demo_burst.sql")
    with connect(endpoints(settings).source, "source", autocommit=True) as conn:
        for statement in steps.values():
            with conn.transaction():
                conn.execute(statement)
    return list(steps)


def run_demo(settings: Settings, say: Callable[[str], None] = lambda _: None) -> DemoReport:
    report = DemoReport()
    began = time.perf_counter()

    def step(what: str, short: str, action: Callable[[], object]) -> object:
        say(what)
        t0 = time.perf_counter()
        result = action()
        report.steps.append((short, time.perf_counter() - t0))
        return result

    step("source: start the embedded PostgreSQL", "up", lambda: pipeline.up(settings))
    step("source: load Pagila", "load", lambda: api.load_pagila(settings))
    ingested = step("bronze: initial snapshot", "snapshot", lambda: pipeline.ingest(settings))
    report.snapshot_rows = ingested.snapshot_rows
    report.snapshot_rows_per_s = ingested.snapshot_rows / ingested.snapshot_seconds if ingested.snapshot_seconds else 0
    step("silver + gold: first build", "first build", lambda: pipeline.build(settings))
    ends = endpoints(settings)
    with connect(ends.source, "source", autocommit=True) as src:
        report.before = src.execute("select clock_timestamp()").fetchone()[0]
    step("source: a burst of changes", "burst", lambda: burst(settings))
    ran = step("run: ingest, then build", "run", lambda: pipeline.run(settings))
    report.burst_changes = ran.ingest.changes
    _collect(settings, report)
    report.seconds = time.perf_counter() - began
    return report


def _collect(settings: Settings, report: DemoReport) -> None:
    queries = named_sql("pagila_example", "demo_report.sql")
    with connect(endpoints(settings).warehouse, "warehouse") as wh:
        report.top_months = wh.execute(queries["top_months"]).fetchall()
        where = {"store_id": DEMO_STORE, "month": DEMO_MONTH, "at": report.before}
        report.mart_now = wh.execute(queries["mart_now"], where).fetchone()
        report.mart_before = wh.execute(queries["mart_before"], where).fetchone()
        for schema, table in wh.execute(queries["layer_tables"]).fetchall():
            count = wh.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))).fetchone()[0]
            report.layers.setdefault(schema, []).append((table, count))
    history = "select email from silver.dim_customer_hist for system_time as of %(at)s where customer_id = %(id)s"
    before = pipeline.query(settings, history, {"at": report.before, "id": DEMO_CUSTOMER})
    now = pipeline.query(settings, "select email from silver.dim_customer where customer_id = %(id)s",
                         {"id": DEMO_CUSTOMER})
    report.email_before = before.rows[0][0] if before.rows else None
    report.email_now = now.rows[0][0] if now.rows else None
