"""The library API behind the CLI: one function per command, no printing, typed results.

Flow: source (embedded cluster, Pagila) -> bronze (ingest) -> silver and gold (dbt build).
"""

from __future__ import annotations

import shlex
import time
from contextlib import nullcontext
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from medallion import locks, transform
from medallion.access import roles
from medallion.bronze import checks, ddl, publication, store
from medallion.bronze import slot as slots
from medallion.bronze.ingest import DEFAULT_BATCH, BatchResult, Ingester, connection_lost, stop_on_interrupt
from medallion.bronze.resync import SlotHealth, slot_health
from medallion.context import Context
from medallion.db import Endpoints, connect
from medallion.engines import Engine, engine_named
from medallion.sqlfiles import sql_text
from medallion.errors import (CaptureReset, ConnectionLost, IngesterRunning, MedallionError, RoleSetupFailed,
                              SlotBusy)
from medallion.health import CaptureHealth
from medallion.health import evaluate as evaluate_health
from medallion.metric_hooks import batch_written, counting_snapshot, records_build
from medallion.selection import Selection, read_plan
from medallion.settings import Settings
from medallion.silver.project import BuildProject
from medallion.source.catalog import read_tables
from medallion.source.cluster import EmbeddedCluster

if TYPE_CHECKING:  # sqlglot costs ~0.2 s to import: only `query` needs it
    from medallion.lake.export import ExportReport, TableExport
    from medallion.query import QueryResult

WAREHOUSE_SCHEMAS = ("gold", "silver", "bronze", "medallion")  # medallion: the engine's bookkeeping


def up(settings: Settings | Context) -> str:
    """Start the embedded cluster (creating it the first time). Returns what was done."""
    if not settings.embedded:
        raise MedallionError("MEDALLION_SOURCE_DSN/MEDALLION_WAREHOUSE_DSN are set: the embedded cluster is not used; "
                             "unset them to run it")
    return EmbeddedCluster(settings.home, analyst_role=settings.analyst_role).up()


def down(settings: Settings | Context) -> bool:
    return EmbeddedCluster(settings.home).down()


def env_lines(settings: Settings | Context, dbt: bool = False) -> list[str]:
    """`export` lines for the two DSNs, ready for eval in a shell; dbt: also the profile medallion
    writes for dbt (its folder, its name and the warehouse it reads from MEDALLION_DBT_*), so
    that dbt run by hand in your project (`medallion dbt-setup`) builds this warehouse."""
    from medallion.silver.project import project_path

    ctx = Context.of(settings)
    ends = ctx.endpoints
    if not dbt:
        return [f"export MEDALLION_SOURCE_DSN={shlex.quote(ends.source)}",
                f"export MEDALLION_WAREHOUSE_DSN={shlex.quote(ends.warehouse)}"]
    profile = {"DBT_PROFILES_DIR": str(project_path(ctx.home)), "DBT_PROFILE": "medallion",
               **transform.profile_env(ends.warehouse)}
    return env_lines(ctx) + [f"export {name}={shlex.quote(value)}" for name, value in profile.items()]


def selection(settings: Settings | Context) -> Selection:
    """medallion.toml's selection resolved against the source's catalog now; tables that
    bronze has already captured keep their recorded bronze names."""
    ctx = Context.of(settings)
    ends = ctx.endpoints
    with connect(ends.warehouse, "warehouse") as wh, connect(ends.source, "source") as src:
        return read_plan(ctx.config, src, wh).selection


@dataclass
class PreparedSource:
    identity_changed: list[str]  # relations set to REPLICA IDENTITY FULL now
    publication: str  # the pipeline's publication (what pgoutput sends)
    published: str  # what it publishes
    ddl_trigger: bool  # the source announces its DDL (medallion.bronze.ddl); needs a superuser


def prepare_source(settings: Settings | Context) -> PreparedSource:
    """What capture needs on the source, for the selection: REPLICA IDENTITY FULL on every
    captured table and partition, and the pipeline's publication. Run by the tables' owner."""
    ctx = Context.of(settings)
    chosen = selection(ctx)
    with connect(ctx.endpoints.source, "source") as conn:
        changed = checks.prepare_source(conn, chosen)
        if changed:  # the publication lists tables by their identity as it is now
            chosen = selection(ctx)
        published = publication.ensure(conn, ctx.slot, chosen)
        trigger = ddl.can_install(conn)
        if trigger:
            ddl.install(conn)
            publication.remember_schemas(conn, ctx.slot, chosen)  # new tables join it by themselves
    return PreparedSource(changed, publication.publication_name(ctx.slot), published, trigger)


def reset_warehouse(ends: Endpoints) -> None:
    with connect(ends.warehouse, "warehouse") as conn:
        for schema in WAREHOUSE_SCHEMAS:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        conn.commit()


def reset(settings: Settings | Context) -> None:
    """Drop the slot and every warehouse layer: the next ingest starts with a new snapshot.

    Refused while an ingester runs on the slot: it would fail half-way, or recreate bronze.
    The ingester's lock is held (this session's) until the reset is done."""
    ends = Context.of(settings).endpoints
    with connect(ends.warehouse, "warehouse", autocommit=True) as wh, \
            connect(ends.source, "source", autocommit=True) as conn:
        locks.refuse_while_in_use(wh, "'medallion reset'")  # held until the reset is done
        _refuse_while_ingesting(conn, settings.slot)
        row = slots.slot_row(conn, settings.slot)
        if row is not None:
            if row["active_pid"]:
                raise MedallionError(f"slot {settings.slot} is in use by source pid {row['active_pid']}: "
                                     "stop the ingester first")
            slots.drop(conn, settings.slot)
        reset_warehouse(ends)


def _refuse_while_ingesting(conn: psycopg.Connection, slot: str) -> None:
    lock = slots.IngesterLock(conn, slot)
    try:
        lock.acquire(0)
    except SlotBusy:
        holder = conn.execute(sql_text("medallion.bronze", "lock_holder.sql"), {"key": lock.key}).fetchone()
        who = f" (source backend pid {holder[0]})" if holder else ""
        raise IngesterRunning(f"an ingester is running on slot {slot}{who}: stop it (Ctrl-C on 'medallion "
                              "ingest --follow') before 'medallion reset'") from None


@dataclass
class IngestReport:
    snapshot_rows: int = 0
    snapshot_seconds: float = 0.0
    batches: list[BatchResult] = field(default_factory=list)
    stream_seconds: float = 0.0  # wall clock of streaming: decoding, parsing and writing
    plugin: str = ""

    @property
    def changes(self) -> int:
        return sum(b.changes for b in self.batches)


def ingest(settings: Settings | Context, follow: bool = False, batch_size: int = DEFAULT_BATCH, wait: float = 30.0,
           notify: Callable[[str], None] = lambda _: None,
           on_snapshot_table: Callable[[str, int], None] = lambda *_: None,
           on_batch: Callable[[BatchResult, Callable[[], int | None]], None] = lambda *_: None,
           give_up_after: float = 300.0, should_stop: Callable[[], bool] | None = None) -> IngestReport:
    """Capture the source into bronze: the initial snapshot once, then the change stream.

    Without follow, drains what is pending and returns. With follow, keeps going until
    SIGINT/SIGTERM, writing what it has first; when the source or the warehouse restarts (or the
    network drops), it reconnects with backoff and resumes from bronze's recorded position,
    giving up after give_up_after seconds without a connection. should_stop replaces the signal
    handlers (an ingester in a thread of a process that handles its signals itself)."""
    ctx = Context.of(settings)
    report = IngestReport()
    outage = {"since": None, "delay": 1.0}

    def connected() -> None:
        if outage["since"] is not None:
            notify(f"reconnected after {time.monotonic() - outage['since']:.1f}s: streaming from bronze's "
                   "recorded position")
        outage.update(since=None, delay=1.0)

    stopper = nullcontext(should_stop) if should_stop else stop_on_interrupt() if follow else nullcontext(lambda: False)
    with stopper as should_stop:
        while True:
            try:
                _ingest_once(ctx, report, follow, batch_size, wait, notify, on_snapshot_table, on_batch,
                             should_stop, connected)
                return report
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedObject) as exc:
                # bronze's tables or the slot vanished under a running ingester: a reset, load-pagila
                # or a hand-made drop in the meantime. What was committed before is intact.
                raise CaptureReset(f"{exc.diag.message_primary} while ingesting on slot {ctx.slot} (was bronze "
                                   "or the slot dropped meanwhile, by 'medallion reset' or 'load-pagila'?): run "
                                   "'medallion ingest' again to start over") from None
            except Exception as exc:  # noqa: BLE001 - only a lost connection is retried; the rest is raised
                lost = connection_lost(exc)
                if lost is None or not follow:
                    raise lost if lost is not None else exc
                now = time.monotonic()
                if outage["since"] is None:
                    outage["since"] = now
                    notify(f"{lost}; reconnecting (giving up after {give_up_after:.0f}s)")
                if now - outage["since"] > give_up_after:
                    raise ConnectionLost(f"{lost}; gave up after {give_up_after:.0f}s without a connection: "
                                         "check the source and the warehouse, then run 'medallion ingest' again") \
                        from None
                end = time.monotonic() + outage["delay"]
                while time.monotonic() < end and not should_stop():
                    time.sleep(0.1)
                if should_stop():
                    return report
                outage["delay"] = min(outage["delay"] * 2, 10.0)


def _ingest_once(ctx: Context, report: IngestReport, follow: bool, batch_size: int, wait: float,
                 notify: Callable[[str], None], on_snapshot_table: Callable[[str, int], None],
                 on_batch: Callable[[BatchResult, Callable[[], int | None]], None], should_stop: Callable[[], bool],
                 connected: Callable[[], None]) -> None:
    with Ingester(ctx.endpoints, ctx.slot, ctx.config, batch_size, wait, notify, plugin=ctx.plugin) as ingester:
        began = time.perf_counter()
        rows = ingester.start(counting_snapshot(on_snapshot_table))
        if rows:
            report.snapshot_rows = rows
            report.snapshot_seconds = time.perf_counter() - began
        connected()

        def record(result: BatchResult) -> None:
            if result.transactions or result.skipped_transactions:
                report.batches.append(result)
            batch_written(result)
            on_batch(result, ingester.lag_bytes)  # lag costs a query: asked only when shown

        report.plugin = ingester.plugin
        began = time.perf_counter()
        try:
            if follow:
                ingester.follow(should_stop, record)
            else:
                ingester.drain(record)
        finally:
            report.stream_seconds += time.perf_counter() - began


def resync(settings: Settings | Context, notify: Callable[[str], None] = lambda _: None,
           on_snapshot_table: Callable[[str, int], None] = lambda *_: None) -> int:
    """After a lost slot (dropped, or invalidated by max_slot_wal_keep_size): a new snapshot into
    the existing bronze as a new epoch; history up to the gap is kept and the gap recorded.
    Returns the rows of the new epoch."""
    ctx = Context.of(settings)
    with Ingester(ctx.endpoints, ctx.slot, ctx.config, notify=notify, plugin=ctx.plugin) as ingester:
        return ingester.resync(on_snapshot_table)


def resync_table(settings: Settings | Context, name: str, notify: Callable[[str], None] = lambda _: None) -> str:
    """`medallion resync --table schema.table`: an online snapshot of one captured table
    (medallion.bronze.online_snapshot), taken while capture runs; no other table is touched.
    The request is recorded in the warehouse; a following ingester takes it up within seconds,
    else this runs the ingester until the snapshot is done. Returns what happened, in words."""
    from medallion.bronze import online_snapshot
    from medallion.errors import SelectionError, SlotBusy
    from medallion.patterns import display, parse_qualified_name

    try:
        ident = parse_qualified_name(name)
    except ValueError as exc:
        raise SelectionError(f"--table {name!r}: {exc}; write schema.table, e.g. public.customer") from None
    ctx = Context.of(settings)
    ends = ctx.endpoints
    with connect(ends.warehouse, "warehouse") as wh, connect(ends.source, "source", autocommit=True) as src:
        recorded = {(t.schema, t.name): t for t in store.recorded_tables(wh).values()}
        state = store.read_state(wh, ctx.slot) if recorded else None
        if state is None or ident not in recorded or recorded[ident].event == "drop":
            raise SelectionError(f"{display(*ident)} is not a table bronze captures: 'medallion tables' lists "
                                 "them (a table not captured yet is snapshotted when it is)")
        table = {t.ident: t for t in read_tables(src)}.get(ident)
        if table is None:
            raise SelectionError(f"{display(*ident)} is no longer in the source: there is nothing to re-sync")
        key = online_snapshot.chunk_key(table, ctx.config.options(*ident).key)
        online_snapshot.ensure_schema(wh)
        asked = wh.execute(sql_text("medallion.bronze", "online_snapshot_request.sql"), {
            "slot": ctx.slot, "bronze": recorded[ident].bronze, "schema": ident[0], "table": ident[1],
            "key": list(key)}).fetchone()
        wh.commit()
    if asked is None:
        notify(f"an online snapshot of {display(*ident)} is already under way: it goes on")
    try:
        ingest(ctx, wait=1.0, notify=notify)
    except SlotBusy:
        return (f"asked for an online snapshot of {display(*ident)}: the running ingester takes it up within "
                f"{online_snapshot.REQUESTS_EVERY:.0f}s ('medallion status' shows it)")
    return f"re-synced {display(*ident)} online (history before it kept)"


@dataclass
class Status:
    slot: dict | None
    state: store.State | None
    counts: dict[str, int]
    health: SlotHealth | None = None  # None before the first ingest
    gaps: list[tuple] = field(default_factory=list)  # (reason, last commit ts, re-sync ts)
    horizon: object = None  # silver is complete up to this source time (None before a build)
    capture: CaptureHealth = field(default_factory=CaptureHealth)  # what puts capture at risk (exit code)


def status(settings: Settings | Context, counts: bool = True) -> Status:
    """What `medallion status` shows; counts=False leaves out the bronze row counts (a count(*)
    per table: too slow for every Prometheus scrape)."""
    ctx = Context.of(settings)
    ends = ctx.endpoints
    with connect(ends.source, "source", autocommit=True) as src:
        slot_info = slots.status(src, ctx.slot)
        with connect(ends.warehouse, "warehouse") as wh:
            has_bronze = wh.execute("select to_regclass('bronze.ingest_state') is not null").fetchone()[0]
            state = store.read_state(wh, ctx.slot) if has_bronze else None
            rows = store.row_counts(wh) if has_bronze and counts else {}
            has_gaps = has_bronze and wh.execute("select to_regclass('bronze.capture_gap') is not null").fetchone()[0]
            gaps = wh.execute("select reason, last_commit_ts, resync_ts from bronze.capture_gap where slot_name = %s "
                              "order by gap_id", [ctx.slot]).fetchall() if has_gaps else []
            has_horizon = wh.execute("select to_regprocedure('silver.horizon()') is not null").fetchone()[0]
            horizon = wh.execute("select silver.horizon()").fetchone()[0] if has_horizon else None
            health = slot_health(src, ctx.slot, state.last_commit_lsn) if state is not None else None
            plugin = state.plugin if state is not None else (ctx.plugin or slots.DEFAULT_PLUGIN)
            capture = evaluate_health(src, wh, ctx.slot, ctx.config, state, plugin)
    return Status(slot_info, state, rows, health, gaps, horizon, capture)


@records_build
def build(settings: Settings | Context, full_refresh: bool = False, select: tuple[str, ...] = (),
          tests: bool = True, engine: str | Engine = "postgres", full_tests: bool = False,
          stored: bool = True) -> transform.BuildReport:
    """Build silver (and gold) from bronze with dbt: models and their tests.

    Incremental by default: each model applies only the bronze rows past its watermark.
    full_refresh rebuilds every model from all of bronze (the result is the same); select
    narrows the build with dbt selectors, e.g. ("silver",); tests=False skips the dbt tests
    (frequent refreshes; the nightly run tests). The tests check what bronze changed since the
    last passing build; full_tests checks whole tables (the nightly full test). engine="spark"
    builds the same project with Spark from the Iceberg lake (bronze exported by `export`) into
    Iceberg tables.

    stored=True (the default): when the project is the one the last dbt build ran and bronze's
    new stretch holds nothing it cannot carry, run the statements and compiled tests that build
    stored, without starting dbt (same SQL, same result; stored_build.py). False: always dbt.

    Afterwards the analyst role may read what a PostgreSQL build made (grant_readers). A
    PostgreSQL build holds medallion.locks' locks: no reset meanwhile, and `run --follow`'s
    rounds wait for it (its tests see one state of silver and gold)."""
    ctx, chosen = Context.of(settings), engine_named(engine)
    with chosen.building(ctx):
        report = transform.build(ctx, full_refresh, select, tests, chosen, full_tests, stored)
    if chosen.in_warehouse:
        report.notes.extend(grant_readers(ctx))
    return report


def grant_readers(settings: Settings | Context) -> list[str]:
    """Grant the analyst role (MEDALLION_ANALYST_ROLE) read access to silver and gold, as their
    owner, for what exists and what later builds create. Returns notes: what could not be granted.

    Run after every build (and every Dagster dbt run): a build that replaces a table or adds a
    model never leaves `medallion query` unable to read it."""
    ctx = Context.of(settings)
    with connect(ctx.endpoints.warehouse, "warehouse", autocommit=True) as conn:
        if not roles.role_exists(conn, ctx.analyst_role):
            return [f"no role {settings.analyst_role} on the warehouse: 'medallion query' cannot read silver and "
                    "gold until an admin runs 'medallion grant' (or set MEDALLION_QUERY_DSN)"]
        try:
            roles.grant_analyst(conn, settings.analyst_role)
        except RoleSetupFailed as exc:
            return [f"analysts' read access not granted: {exc}"]
    return []


def grant(settings: Settings | Context, capture_role: str = roles.DEFAULT_CAPTURE_ROLE,
          pipeline_role: str = roles.DEFAULT_PIPELINE_ROLE) -> list[str]:
    """Create the three least-privilege roles and grant them what they need (run as an admin).

    On the source: the capture role, with REPLICATION and SELECT on the captured tables. On
    the warehouse: the pipeline role, which may create (and so own) bronze, silver and gold,
    and the analyst role (MEDALLION_ANALYST_ROLE), which may read silver and gold. Returns
    what was done, in words. Idempotent: run it again after the selection grows."""
    ctx = Context.of(settings)
    ends = ctx.endpoints
    chosen = selection(ctx)
    done: list[str] = []
    with connect(ends.source, "source", autocommit=True) as src:
        done += roles.ensure_capture(src, capture_role)
        done += roles.grant_capture(src, capture_role, [t.table.ident for t in chosen.captured])
    with connect(ends.warehouse, "warehouse", autocommit=True) as wh:
        done += roles.ensure_pipeline(wh, pipeline_role)
        done += roles.grant_pipeline(wh, pipeline_role)
        done += roles.ensure_analyst(wh, settings.analyst_role)
        done += roles.grant_analyst(wh, settings.analyst_role)
    return done


def grant_sql(settings: Settings | Context, capture_role: str = roles.DEFAULT_CAPTURE_ROLE,
              pipeline_role: str = roles.DEFAULT_PIPELINE_ROLE) -> list[str]:
    """What `grant` would run, as SQL text grouped by the role that may run it; nothing is run."""
    from medallion.access import plan

    ctx = Context.of(settings)
    ends = ctx.endpoints
    tables = [t.table.ident for t in selection(ctx).captured]
    with connect(ends.source, "source", autocommit=True) as src, \
            connect(ends.warehouse, "warehouse", autocommit=True) as wh:
        blocks, existing = plan.grant_plan(src, wh, capture_role, pipeline_role, settings.analyst_role, tables)
        return plan.render(blocks, existing, src, wh)


def build_project(settings: Settings | Context, predict: bool = False) -> BuildProject:
    """Write the dbt project that `build` runs (silver generated from bronze's record, the
    project's own dbt as a package); predict plans from the selection before the first ingest."""
    return transform.prepare_project(Context.of(settings), predict)


def export(settings: Settings | Context, chunk_rows: int | None = None,
           on_commit: Callable[[TableExport], None] = lambda _: None) -> ExportReport:
    """Append bronze's new rows to the Iceberg lake ([lake] in medallion.toml), exactly once;
    on_commit hears of each Iceberg commit (a table's rows so far), for progress."""
    from medallion.lake.export import CHUNK_ROWS
    from medallion.lake.export import export as export_bronze

    return export_bronze(Context.of(settings), chunk_rows or CHUNK_ROWS, on_commit)


@dataclass
class RunReport:
    ingest: IngestReport
    build: transform.BuildReport
    export: ExportReport | None = None


def run(settings: Settings | Context, notify: Callable[[str], None] = lambda _: None,
        engine: str | Engine = "postgres", full_tests: bool = False) -> RunReport:
    """The nightly job: bring bronze up to date, export it to the lake when [lake] is configured,
    then build silver and gold from it (on PostgreSQL, or on Spark from the lake)."""
    ctx = Context.of(settings)
    ingested = ingest(ctx, notify=notify)
    exported = export(ctx) if ctx.config.lake is not None else None
    return RunReport(ingested, build(ctx, engine=engine, full_tests=full_tests), exported)


# Time travel: analysts' SQL with SQL:2011 FOR SYSTEM_TIME, read-only on the warehouse.

def query(settings: Settings | Context, sql_text: str, params: dict[str, object] | None = None,
          known_at: str | None = None, strict: bool = False, engine: str | Engine = "postgres") -> QueryResult:
    """Run one statement on the warehouse, FOR SYSTEM_TIME clauses rewritten (see medallion.query).

    Read-only: the statement runs as the analyst role (MEDALLION_QUERY_DSN, else the warehouse as
    MEDALLION_ANALYST_ROLE), in a read-only transaction. params fill %(name)s placeholders.
    known_at answers every FOR SYSTEM_TIME as the warehouse knew it then; strict makes a
    question past silver's horizon an error instead of a warning. engine="spark" answers from
    the Iceberg lake with Spark (the statement transpiled by sqlglot)."""
    return engine_named(engine).query(Context.of(settings), sql_text, params, known_at, strict)


def explain_query(settings: Settings | Context, sql_text: str, known_at: str | None = None,
                  engine: str | Engine = "postgres") -> str:
    """The SQL a query runs as, formatted; its tables are checked but nothing runs."""
    return engine_named(engine).explain(Context.of(settings), sql_text, known_at)
