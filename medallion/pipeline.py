"""The library API behind the CLI: one function per command, no printing, typed results.

Flow: source (embedded cluster, Pagila) -> bronze (ingest) -> silver and gold (dbt build).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from psycopg import sql

from medallion import transform
from medallion.bronze import checks, store
from medallion.bronze import slot as slots
from medallion.bronze.ingest import DEFAULT_BATCH, BatchResult, Ingester, stop_on_interrupt
from medallion.db import Endpoints, connect, endpoints
from medallion.errors import MedallionError
from medallion.selection import Selection, resolve
from medallion.settings import Settings
from medallion.silver.project import BuildProject
from medallion.source.catalog import read_tables
from medallion.source import pagila
from medallion.source.cluster import EmbeddedCluster
from medallion.source.scale import ScaleReport
from medallion.source.scale import scale as scale_source
from medallion.source.simulate import SimulationReport
from medallion.source.simulate import simulate as run_simulation

if TYPE_CHECKING:  # sqlglot costs ~0.2 s to import: only `query` needs it
    from medallion.lake.export import ExportReport
    from medallion.query import QueryResult

WAREHOUSE_SCHEMAS = ("gold", "silver", "bronze")


def up(settings: Settings) -> str:
    """Start the embedded cluster (creating it the first time). Returns what was done."""
    if not settings.embedded:
        raise MedallionError("MEDALLION_SOURCE_DSN/MEDALLION_WAREHOUSE_DSN are set: the embedded cluster is not used; "
                             "unset them to run it")
    return EmbeddedCluster(settings.home).up()


def down(settings: Settings) -> bool:
    return EmbeddedCluster(settings.home).down()


def env_lines(settings: Settings) -> list[str]:
    """`export` lines for the two DSNs, ready for eval in a shell."""
    ends = endpoints(settings)
    return [f"export MEDALLION_SOURCE_DSN={shlex.quote(ends.source)}",
            f"export MEDALLION_WAREHOUSE_DSN={shlex.quote(ends.warehouse)}"]


def load_pagila(settings: Settings, log: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """(Re)create the source database from Pagila and make its tables capturable.

    Bronze captured from the old database no longer matches it: the slot goes with the
    database, and the warehouse's bronze/silver/gold are reset too."""
    ends = endpoints(settings)
    files = pagila.locate_files(settings.pagila_dir, settings.home / "pagila", log)
    counts = pagila.load(ends.source, files)
    reset_warehouse(ends)
    prepare_source(settings)
    return counts


def selection(settings: Settings) -> Selection:
    """medallion.toml's selection resolved against the source's catalog now; tables that
    bronze has already captured keep their recorded bronze names."""
    ends = endpoints(settings)
    config = settings.config()
    recorded: dict[tuple[str, str], str] = {}
    with connect(ends.warehouse, "warehouse") as wh:
        recorded = {t.ident: t.bronze for t in store.recorded_tables(wh).values()}
    with connect(ends.source, "source") as src:
        return resolve(config, read_tables(src), recorded)


def prepare_source(settings: Settings) -> list[str]:
    """REPLICA IDENTITY FULL on every captured table and partition; returns what changed."""
    chosen = selection(settings)
    with connect(endpoints(settings).source, "source") as conn:
        return checks.prepare_source(conn, chosen)


def simulate(settings: Settings, seed: int = 42, transactions: int | None = 100, seconds: float | None = None,
             rate: float | None = 50.0, progress: Callable[[int], None] = lambda _: None) -> SimulationReport:
    """Seeded OLTP activity on the source (see medallion.source.simulate)."""
    return run_simulation(endpoints(settings).source, seed, transactions, seconds, rate, progress)


def scale(settings: Settings, factor: int, progress: Callable[[int, int], None] = lambda *_: None) -> ScaleReport:
    """Grow the source to `factor` times Pagila's rentals and payments (see medallion.source.scale)."""
    return scale_source(endpoints(settings).source, factor, progress)


def reset_warehouse(ends: Endpoints) -> None:
    with connect(ends.warehouse, "warehouse") as conn:
        for schema in WAREHOUSE_SCHEMAS:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        conn.commit()


def reset(settings: Settings) -> None:
    """Drop the slot and every warehouse layer: the next ingest starts with a new snapshot."""
    ends = endpoints(settings)
    with connect(ends.source, "source", autocommit=True) as conn:
        row = slots.slot_row(conn, settings.slot)
        if row is not None:
            if row["active_pid"]:
                raise MedallionError(f"slot {settings.slot} is in use by source pid {row['active_pid']}: "
                                     "stop the ingester first")
            slots.drop(conn, settings.slot)
    reset_warehouse(ends)


@dataclass
class IngestReport:
    snapshot_rows: int = 0
    snapshot_seconds: float = 0.0
    batches: list[BatchResult] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return sum(b.changes for b in self.batches)

    @property
    def stream_seconds(self) -> float:
        return sum(b.seconds for b in self.batches)


def ingest(settings: Settings, follow: bool = False, batch_size: int = DEFAULT_BATCH, wait: float = 30.0,
           notify: Callable[[str], None] = lambda _: None,
           on_snapshot_table: Callable[[str, int], None] = lambda *_: None,
           on_batch: Callable[[BatchResult, Callable[[], int | None]], None] = lambda *_: None) -> IngestReport:
    """Capture the source into bronze: the initial snapshot once, then the change stream.

    Without follow, drains what is pending and returns. With follow, keeps going in bounded
    batches until SIGINT/SIGTERM, finishing the batch in hand first."""
    report = IngestReport()
    with Ingester(endpoints(settings), settings.slot, settings.config(), batch_size, wait, notify) as ingester:
        began = time.perf_counter()
        report.snapshot_rows = ingester.start(on_snapshot_table)
        report.snapshot_seconds = time.perf_counter() - began if report.snapshot_rows else 0.0

        def record(result: BatchResult) -> None:
            if result.transactions or result.skipped_transactions:
                report.batches.append(result)
            on_batch(result, ingester.lag_bytes)  # lag costs a query: asked only when shown

        if follow:
            with stop_on_interrupt() as should_stop:
                ingester.follow(should_stop, record)
        else:
            ingester.drain(record)
    return report


@dataclass
class Status:
    slot: dict | None
    state: store.State | None
    counts: dict[str, int]


def status(settings: Settings) -> Status:
    ends = endpoints(settings)
    with connect(ends.source, "source", autocommit=True) as src:
        slot_info = slots.status(src, settings.slot)
    with connect(ends.warehouse, "warehouse") as wh:
        has_bronze = wh.execute("select to_regclass('bronze.ingest_state') is not null").fetchone()[0]
        state = store.read_state(wh, settings.slot) if has_bronze else None
        counts = store.row_counts(wh) if has_bronze else {}
    return Status(slot_info, state, counts)


def build(settings: Settings, full_refresh: bool = False, select: tuple[str, ...] = (),
          tests: bool = True, engine: str = "postgres") -> transform.BuildReport:
    """Build silver (and gold) from bronze with dbt: models and their tests.

    Incremental by default: each model applies only the bronze rows past its watermark.
    full_refresh rebuilds every model from all of bronze (the result is the same); select
    narrows the build with dbt selectors, e.g. ("silver",); tests=False skips the dbt tests
    (frequent refreshes; the nightly run tests). engine="spark" builds the same project with
    Spark from the Iceberg lake (bronze exported by `export`) into Iceberg tables."""
    return transform.build(settings, full_refresh, select, tests, engine)


def build_project(settings: Settings, predict: bool = False) -> BuildProject:
    """Write the dbt project that `build` runs (silver generated from bronze's record, the
    project's own dbt as a package); predict plans from the selection before the first ingest."""
    return transform.prepare_project(settings, predict)


def export(settings: Settings, chunk_rows: int | None = None) -> ExportReport:
    """Append bronze's new rows to the Iceberg lake ([lake] in medallion.toml), exactly once."""
    from medallion.lake.export import CHUNK_ROWS
    from medallion.lake.export import export as export_bronze

    return export_bronze(settings, chunk_rows or CHUNK_ROWS)


@dataclass
class RunReport:
    ingest: IngestReport
    build: transform.BuildReport
    export: ExportReport | None = None


def run(settings: Settings, notify: Callable[[str], None] = lambda _: None, engine: str = "postgres") -> RunReport:
    """The nightly job: bring bronze up to date, export it to the lake when [lake] is configured,
    then build silver and gold from it (on PostgreSQL, or on Spark from the lake)."""
    ingested = ingest(settings, notify=notify)
    exported = export(settings) if settings.config().lake is not None else None
    return RunReport(ingested, build(settings, engine=engine), exported)


# Time travel: analysts' SQL with SQL:2011 FOR SYSTEM_TIME, read-only on the warehouse.

def query(settings: Settings, sql_text: str, params: dict[str, object] | None = None,
          engine: str = "postgres") -> QueryResult:
    """Run one statement on the warehouse, FOR SYSTEM_TIME clauses rewritten (see medallion.query).

    Read-only: the statement cannot change the warehouse. params fill %(name)s placeholders.
    engine="spark" answers from the Iceberg lake with Spark (the statement transpiled by sqlglot)."""
    if engine == "spark":
        from medallion.spark.query import run_spark_query

        if params:
            raise MedallionError("--param is for PostgreSQL: on Spark write the value into the statement")
        return run_spark_query(settings, sql_text)
    from medallion.query import run_query

    return run_query(settings, sql_text, params)


def explain_query(settings: Settings, sql_text: str, engine: str = "postgres") -> str:
    """The SQL a query runs as, formatted; its tables are checked but nothing runs."""
    if engine == "spark":
        from medallion.spark.query import explain_spark_query

        return explain_spark_query(settings, sql_text)
    from medallion.query import explain_query as explain

    return explain(settings, sql_text)
