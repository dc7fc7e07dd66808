"""The `medallion` command: parses arguments, calls medallion.pipeline, prints the result.

Every library error becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medallion import errorlog, pipeline, status_json, transform
from medallion.access.roles import DEFAULT_CAPTURE_ROLE, DEFAULT_PIPELINE_ROLE
from medallion.bronze.ingest import DEFAULT_BATCH, BatchResult
from medallion.context import Context, resolve
from medallion.engines import ENGINES as ENGINE_NAMES
from medallion.engines import engine_named
from medallion.errors import MedallionError
from medallion.health import UNKNOWN
from medallion.settings import load_settings

if TYPE_CHECKING:  # the query module (sqlglot) loads only when `medallion query` runs
    from medallion.follow import FollowReport
    from medallion.query import QueryResult

# a line is never broken at the terminal's width: scripts and tests read each summary as one line
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
ENGINES = click.Choice(list(ENGINE_NAMES))


def fail(message: str, code: int = 1) -> NoReturn:
    """The one error line on stderr, then exit code 1 (a message of several lines is joined)."""
    line = " ".join(part.strip() for part in message.strip().splitlines() if part.strip())
    err.print(f"[bold red]error:[/] {escape(line)}", highlight=False)
    sys.exit(code)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Every failure of a command becomes one line and exit 1, never a traceback.

    A MedallionError's message is the line. Anything else (a bug, a PostgreSQL error without a
    name in medallion) writes its traceback to MEDALLION_HOME/errors.log and names that file.
    click's own exceptions pass through: MedallionGroup turns usage errors into one line too."""
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except MedallionError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted (Ctrl-C): run the command again to finish")
        except Exception as exc:
            fail(errorlog.describe(exc, errorlog.write_traceback(exc)))
    wrapper.friendly = True  # type: ignore[attr-defined]  # the meta-test checks every command has it
    return wrapper


class MedallionGroup(click.Group):
    """click's group, with usage errors (a bad option value, an unknown command) as one line and
    exit 1 like every other failure, instead of the usage text and exit 2."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.Abort:
            fail("aborted: nothing was changed")
        except click.ClickException as exc:
            context = getattr(exc, "ctx", None)
            where = context.command_path if context else (prog_name or "medallion")
            fail(f"{exc.format_message().rstrip('.')}: see '{where} --help'")
        sys.exit(code if isinstance(code, int) else 0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_plugin_commands()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        plugins = _plugin_commands() if command is None else {}
        if cmd_name in plugins:
            try:
                command = plugins[cmd_name].load()
            except Exception as exc:  # an entry point left by an older install: say so, not a traceback
                fail(f"'medallion {cmd_name}' comes from {plugins[cmd_name].value}, which cannot be loaded "
                     f"({type(exc).__name__}: {exc}): reinstall the package that provides it ('make setup')")
        return command


PLUGIN_GROUP = "medallion.commands"


def _plugin_commands() -> dict[str, Any]:
    """Commands other packages add to `medallion` (entry points of the group medallion.commands,
    name -> a click command), loaded only when named: the engine imports none of them (Pagila's
    load-pagila, simulate, scale and demo come from pagila_example this way)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def note(message: str) -> None:
    err.print(f"[dim]{escape(message)}[/]", highlight=False)


@click.group(cls=MedallionGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="pagila-medallion")
def cli() -> None:
    """PostgreSQL change data capture into a lakehouse with time travel.

    source -> bronze (every change, exactly once) -> silver (system-versioned history)
    -> gold (marts). Without MEDALLION_SOURCE_DSN/MEDALLION_WAREHOUSE_DSN every command
    uses the embedded cluster under MEDALLION_HOME (default ./.medallion).

    \b
    Quick start:
      medallion up && medallion load-pagila && medallion ingest && medallion status
    """


@cli.command()
@friendly_errors
def up() -> None:
    """Start the embedded PostgreSQL cluster (created on first use), for its owner only.

    It listens on no TCP port, only on a unix socket in a folder no other OS user may enter,
    and creates the read-only role 'medallion query' runs as. A cluster left by an older
    medallion (open to every local user) is restarted locked down.

    \b
    Example:
      medallion up
      eval "$(medallion env)" && psql "$MEDALLION_SOURCE_DSN"
    """
    ctx = resolve()
    what = pipeline.up(ctx)
    out.print(f"embedded cluster {what}: {ctx.home}")


@cli.command()
@friendly_errors
def down() -> None:
    """Stop the embedded cluster (its data stays in MEDALLION_HOME).

    \b
    Example:
      medallion down
    """
    stopped = pipeline.down(resolve())
    out.print("embedded cluster stopped" if stopped else "embedded cluster was not running")


_ENV_DBT_HELP = ("Also the profile medallion writes for dbt (DBT_PROFILES_DIR, DBT_PROFILE, MEDALLION_DBT_*): "
                 "dbt run by hand in your project ('medallion dbt-setup') builds this warehouse.")


@cli.command()
@click.option("--dbt", "for_dbt", is_flag=True, help=_ENV_DBT_HELP)
@friendly_errors
def env(for_dbt: bool) -> None:
    """Print `export` lines for the source and warehouse DSNs.

    \b
    Example:
      eval "$(medallion env)"
      psql "$MEDALLION_WAREHOUSE_DSN" -c 'select count(*) from bronze.br_rental_cdc'
      eval "$(medallion env --dbt)" && dbt build --project-dir my_dbt
    """
    for line in pipeline.env_lines(resolve(), dbt=for_dbt):
        click.echo(line)


_IDENTITY = {"d": "DEFAULT", "f": "FULL", "i": "INDEX", "n": "NOTHING"}


@cli.command()
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json for scripts.")
@friendly_errors
def tables(fmt: str) -> None:
    """Show the resolved selection: what is captured, under which names, and what is left out.

    Reads medallion.toml (MEDALLION_CONFIG, else ./medallion.toml; without one every table of
    public is captured) and the source's catalog. Each captured table shows its key, replica
    identity, bronze table and silver names; each table left out, the reason.

    \b
    Examples:
      medallion tables
      MEDALLION_CONFIG=shop.toml medallion tables --format json
    """
    import json as json_module

    chosen = pipeline.selection(resolve())
    if fmt == "json":
        click.echo(json_module.dumps({
            "config": str(chosen.config.path) if chosen.config.path else None,
            "captured": [{
                "table": t.name, "key": list(t.key) if t.key else None, "key_origin": t.key_origin,
                "replica_identity": _IDENTITY[t.table.replica_identity], "bronze": f"bronze.{t.bronze}",
                "silver": _silver_names(t), "partitions": [p.qualified for p in t.partitions]}
                for t in chosen.captured],
            "left_out": [{"table": t.name, "reason": t.reason} for t in chosen.left_out],
            "notes": chosen.notes}, indent=2))
        return
    captured = Table("source table", "key", "identity", "bronze.", "silver.", title_justify="left",
                     title=f"captured: {len(chosen.captured)} tables ({chosen.config.where})",
                     caption="silver.<name>_hist: every version; silver.<name>: the current rows; "
                             "silver.<name>_as_of(ts): the rows at ts", caption_justify="left")
    for column in captured.columns:
        column.overflow = "fold"  # names are never cut short, whatever the width
    for t in chosen.captured:
        origin = "" if t.key_origin == "primary key" else f" ({t.key_origin})"
        key = escape(f"{', '.join(t.key)}{origin}") if t.key else "[yellow]none[/]"
        parts = f" (+{len(t.partitions)} partitions)" if t.partitions else ""
        silver = escape(t.silver + (f" (by month of {t.partition_by})" if t.partition_by else "")) if t.key \
            else "[yellow]no history: needs a key[/]"
        captured.add_row(escape(t.name + parts), key, _IDENTITY[t.table.replica_identity], escape(t.bronze), silver)
    out.print(captured)
    if chosen.left_out:
        left = Table("source table", "why", title="left out", title_justify="left")
        for column in left.columns:
            column.overflow = "fold"
        for t in chosen.left_out:
            left.add_row(escape(t.name), escape(t.reason))
        out.print(left)
    for line in chosen.notes:
        note(line)


def _silver_names(t: Any) -> list[str]:
    if not t.key:
        return []
    return [f"silver.{t.silver}_hist", f"silver.{t.silver}", f"silver.{t.silver}_as_of(ts)"]


@cli.command("prepare-source")
@friendly_errors
def prepare_source() -> None:
    """Prepare the source for capture: replica identities and the pipeline's publication.

    A table with a primary key keeps its replica identity: deletes carry the key, and an
    update's unchanged large (TOASTed) values are taken from the row's previous version in
    bronze. REPLICA IDENTITY FULL is set only on a table without a key, so that it can be
    published at all (its history needs [tables] key in medallion.toml); [capture]
    replica_identity = "full" sets FULL on every captured table, as before. The
    publication (named after MEDALLION_SLOT) is what pgoutput sends: the selected tables that have
    a replica identity, never whole schemas (a published table without one could not be updated
    on the source). As a superuser, tables created later join it by themselves (the DDL trigger)
    and are captured from their first row. Run it once by the tables' owner, and again after the
    selection grows.

    \b
    Example:
      MEDALLION_SOURCE_DSN=... MEDALLION_WAREHOUSE_DSN=... medallion prepare-source
    """
    ctx = resolve()
    prepared = pipeline.prepare_source(ctx)
    changed = prepared.identity_changed
    out.print(f"replica identity FULL set on {len(changed)} relations" if changed
              else "no replica identity changed (a table with a primary key keeps its own)")
    out.print(f"publication {prepared.publication}: {prepared.published}")
    if prepared.ddl_trigger:
        out.print("DDL trigger medallion_ddl_end/_drop: schema changes are recorded at their own commit")
    elif not ctx.config.accept_no_ddl_trigger:
        note("no DDL trigger (it needs a superuser): schema changes are recorded when bronze first sees them, "
             "not at the ALTER's own time; run 'medallion prepare-source' as a superuser to install it, "
             "or set [capture] accept_no_ddl_trigger = true in medallion.toml to stop this note")


@cli.command()
@click.option("--capture-role", default=DEFAULT_CAPTURE_ROLE, show_default=True, metavar="ROLE",
              help="The source login that replicates and reads the captured tables.")
@click.option("--pipeline-role", default=DEFAULT_PIPELINE_ROLE, show_default=True, metavar="ROLE",
              help="The warehouse login that creates, and owns, bronze, silver and gold.")
@click.option("--print-sql", is_flag=True,
              help="Print the statements, grouped by the role that may run each, and run nothing.")
@friendly_errors
def grant(capture_role: str, pipeline_role: str, print_sql: bool) -> None:
    """Create the least-privilege roles and grant them what they need (once, by admins).

    \b
    On the source:    CAPTURE_ROLE  LOGIN REPLICATION, SELECT on the captured tables
    On the warehouse: PIPELINE_ROLE LOGIN, CREATE on the database (it then owns its schemas)
                      MEDALLION_ANALYST_ROLE (medallion_analyst) LOGIN, read-only: USAGE and
                      SELECT on silver and gold, EXECUTE on their as-of functions, now and
                      for what later builds create

    \b
    Who may run what (PostgreSQL 15 and 16):
      create the capture role (REPLICATION)  a superuser; on 16 also a role with
                                             CREATEROLE and REPLICATION (CREATEROLE alone: no)
      the capture role's grants              the owner of the source database, schemas, tables
      create the pipeline and analyst roles  a role with CREATEROLE
      the warehouse grants, btree_gist       the owner of the warehouse database
    With DSNs of a superuser it does everything. On a managed server, where nobody is: have
    the provider's admin run the capture role's statement from --print-sql, then run
    'medallion grant' with the tables' owner as MEDALLION_SOURCE_DSN (a role that exists is
    not created again). Roles get no password: set one (ALTER ROLE ... PASSWORD, by whoever
    created the role; for a REPLICATION role on 15 a superuser), or use peer/cert
    authentication. Then run the pipeline with DSNs of the new roles (docs/reliability.md,
    "Managed PostgreSQL"). The embedded cluster needs none of this: 'medallion up' creates
    the analyst role and every build grants it silver and gold.

    \b
    Example:
      MEDALLION_SOURCE_DSN='host=oltp dbname=shop user=admin' \\
      MEDALLION_WAREHOUSE_DSN='host=dwh dbname=lake user=admin' medallion grant
      export MEDALLION_SOURCE_DSN='host=oltp dbname=shop user=medallion_capture'
      export MEDALLION_WAREHOUSE_DSN='host=dwh dbname=lake user=medallion_pipeline'
    """
    ctx = resolve()
    if print_sql:
        for line in pipeline.grant_sql(ctx, capture_role, pipeline_role):
            out.print(escape(line), highlight=False)
        return
    for line in pipeline.grant(ctx, capture_role, pipeline_role):
        out.print(escape(line), highlight=False)


def metrics_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--metrics-port and --metrics-address, for the commands that run long (with --follow)."""
    command = click.option("--metrics-address", default=None, metavar="ADDRESS",
                           help="Where --metrics-port listens (default [metrics] address in medallion.toml, else "
                                "127.0.0.1; 0.0.0.0: every interface).")(command)
    return click.option("--metrics-port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
                        help="With --follow: serve Prometheus metrics at http://127.0.0.1:PORT/metrics (default "
                             "[metrics] port in medallion.toml; neither: none).")(command)


def _serving_metrics(ctx: Context, follow: bool, port: int | None, address: str | None) -> Any:
    """The metrics endpoint for a --follow run (a context manager; a null one when none is asked)."""
    from contextlib import nullcontext

    if port is not None and not follow:
        raise click.UsageError("--metrics-port is for a process that stays up: use it with --follow")
    asked = ctx.config.metrics
    port = port if port is not None else asked.port
    if not follow or port is None:
        return nullcontext()
    from medallion import metrics

    address = address or asked.address
    note(f"metrics at http://{address}:{port}/metrics")
    return metrics.serving(ctx, port, address)


def _rate(changes: int, seconds: float) -> str:
    return f"{changes / seconds:,.0f} changes/s" if seconds > 0 else "-"


@cli.command()
@click.option("--follow", is_flag=True, help="Keep streaming until Ctrl-C (stops after the batch in hand).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH, show_default=True,
              help="Changes per batch (whole transactions, so a batch may hold more).")
@click.option("--wait", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds to wait for a previous ingester to let go of the slot.")
@click.option("--give-up-after", default=300.0, show_default=True, type=click.FloatRange(min=0),
              help="With --follow: seconds without a connection to the source or the warehouse (a restart, a "
                   "network cut) before giving up; until then it reconnects and resumes.")
@metrics_options
@friendly_errors
def ingest(follow: bool, batch_size: int, wait: float, give_up_after: float, metrics_port: int | None,
           metrics_address: str | None) -> None:
    """Capture source changes into bronze, exactly once.

    The first run creates the replication slot and lands every existing row as an R row
    (the initial snapshot); later runs bring the changes committed since.

    \b
    Examples:
      medallion ingest                  # drain what is pending, then exit
      medallion ingest --follow         # stream until Ctrl-C
    """
    ctx = resolve()
    last_print = [0.0]
    window = {"changes": 0, "since": time.monotonic()}

    def on_table(table: str, rows: int) -> None:
        note(f"snapshot {table}: {rows:,} rows")

    def on_batch(result: BatchResult, lag_bytes: Callable[[], int | None]) -> None:
        window["changes"] += result.changes
        now = time.monotonic()
        if follow and now - last_print[0] >= 1.0:
            rate = window["changes"] / (now - window["since"])
            lag = lag_bytes()
            lag_text = f"{lag:,} bytes" if lag is not None else "?"
            err.print(f"[dim]{time.strftime('%H:%M:%S')}  {rate:,.0f} changes/s  lag {lag_text}  "
                      f"last commit {result.last_commit_ts or '-'}[/]", highlight=False)
            last_print[0] = now
            window.update(changes=0, since=now)
        elif not follow and result.transactions:
            note(f"batch: {result.transactions:,} transactions, {result.changes:,} changes "
                 f"({_rate(result.changes, result.seconds)})")

    with _serving_metrics(ctx, follow, metrics_port, metrics_address):
        if follow:
            note("following the source; Ctrl-C stops after the current batch")
        report = pipeline.ingest(ctx, follow, batch_size, wait, note, on_table, on_batch, give_up_after)
    if report.snapshot_rows:
        out.print(f"initial snapshot: {report.snapshot_rows:,} rows in {report.snapshot_seconds:.2f}s "
                  f"({_rate(report.snapshot_rows, report.snapshot_seconds)})")
    out.print(f"streamed: {report.changes:,} changes in {len(report.batches)} batches "
              f"({_rate(report.changes, report.stream_seconds)})")


@cli.command()
@click.option("--json", "as_json", is_flag=True,
              help="One JSON document on stdout (findings, lag, retained WAL, slot, position, row counts; "
                   "'cannot tell' too, with an error field), same exit codes.")
@friendly_errors
def status(as_json: bool) -> None:
    """Show slot lag, retained WAL, the last ingested position and bronze row counts.

    Exits 0 when capture is healthy, 1 when it is at risk (each reason on its own line, naming
    the fix: the slot dropped or invalidated, an interrupted re-sync, lag or retained WAL past
    [status] in medallion.toml, a selected table the publication does not send), 2 when it
    cannot tell (the source or the warehouse cannot be reached, a bad configuration).

    With --json the same, as one document (its shape: medallion/status_json.py).

    \b
    Examples:
      medallion status || alert "capture at risk"
      medallion status --json | jq '.findings[].message'
    """
    ctx: Context | None = None
    try:
        ctx = resolve()
        st = pipeline.status(ctx)
    except MedallionError as exc:
        _cannot_tell(str(exc), ctx, as_json)
    except Exception as exc:  # noqa: BLE001 - a bug: status cannot tell
        _cannot_tell(errorlog.describe(exc, errorlog.write_traceback(exc)), ctx, as_json)
    if as_json:
        click.echo(status_json.dumps(status_json.document(st, ctx.slot)))
        sys.exit(st.capture.exit_code)
    for finding in st.capture.findings:
        err.print(f"[bold red]{escape(finding.title)}:[/] {escape(finding.message)}", highlight=False)
    if st.slot:
        lag, retained = st.slot["lag_bytes"], st.slot["retained_wal_bytes"]
        out.print(f"slot {ctx.slot}: lag {lag or 0:,} bytes, retained WAL {retained or 0:,} bytes (from "
                  f"restart_lsn {st.slot['restart_lsn']}), WAL {st.slot['wal_status']}, confirmed "
                  f"{st.slot['confirmed_flush_lsn']}", highlight=False)
        if st.capture.shared_cluster:
            out.print("  (source and warehouse are one cluster: its WAL, and so lag and retained WAL, include the "
                      "warehouse's own writes)", highlight=False)
    elif st.state is None:
        out.print(f"slot {ctx.slot}: not created yet (run 'medallion ingest')")
    for reason, since, resynced in st.gaps:
        out.print(f"gap: slot {reason} after {since}; re-synced at {resynced} (changes in between are not known)")
    if st.state:
        out.print(f"bronze: up to LSN {st.state.last_commit_lsn}, last commit {st.state.last_commit_ts}, "
                  f"{st.state.changes_total:,} rows ingested")
    if st.horizon is not None:
        out.print(f"silver: complete up to {st.horizon} (source time; every table built from bronze up to there)")
    if st.counts:
        table = Table("bronze table", "rows", title=None)
        for name, count in st.counts.items():
            table.add_row(name, f"{count:,}")
        out.print(table)
    sys.exit(st.capture.exit_code)


def _cannot_tell(message: str, ctx: Context | None, as_json: bool) -> NoReturn:
    """`status` could not evaluate: exit 2, with the document too under --json."""
    if as_json:
        slot = ctx.slot if ctx is not None else None
        click.echo(status_json.dumps(status_json.cannot_tell(slot, " ".join(message.split()))))
    fail(message, UNKNOWN)


@cli.command()
@click.option("--table", "table", metavar="SCHEMA.TABLE", default=None,
              help="Re-read this one captured table online (chunks between watermarks in the stream, no lock), "
                   "while capture runs; every other table is left alone.")
@friendly_errors
def resync(table: str | None) -> None:
    """After a lost slot: take a new snapshot into the same bronze, keeping all history.

    A slot that was dropped, or invalidated because the source removed WAL it still needed
    (max_slot_wal_keep_size), has lost the changes since bronze's last position. `resync`
    creates the slot again and writes each captured table's rows as they are now, as a new
    epoch: silver keeps every version from before the gap; rows that changed or vanished during
    it get their new state at the re-sync time. The gap is recorded (see `medallion status`).
    `reset` is for starting over.

    \b
    Example:
      medallion status          # says 'slot invalidated ...: run medallion resync'
      medallion resync && medallion run
      medallion resync --table app.orders   # one table, online, while capture runs
    """
    if table is not None:
        out.print(pipeline.resync_table(resolve(), table, note))
        return
    rows = pipeline.resync(resolve(), note, lambda table, n: note(f"re-sync {table}: {n:,} rows"))
    out.print(f"re-synced: a new epoch of {rows:,} rows; history before the gap is kept")


@cli.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly_errors
def reset(yes: bool) -> None:
    """Drop the slot and the warehouse's bronze, silver and gold; the next ingest re-snapshots.

    \b
    Example:
      medallion reset --yes && medallion ingest
    """
    if not yes:
        click.confirm("Drop the replication slot and all warehouse layers?", abort=True)
    pipeline.reset(resolve())
    out.print("reset: slot dropped, bronze/silver/gold dropped")


def _print_build(report: transform.BuildReport) -> None:
    for line in report.notes:
        note(line)
    how = f"dbt started: {report.dbt_reason}" if report.dbt_reason else \
        "without starting dbt: the statements its last build stored, the project unchanged"
    out.print(f"built: {report.count('model')} models, {report.count('test')} tests passed "
              f"({report.seconds:.1f}s, {how})")


@cli.command()
@click.option("--full-refresh", is_flag=True, help="Rebuild every model from all of bronze (same result).")
@click.option("--skip-tests", is_flag=True,
              help="Models only, no dbt tests: for frequent refreshes between tested builds.")
@click.option("--full-tests", is_flag=True,
              help="Test whole tables, not only the keys bronze changed since the last passing build (nightly).")
@click.option("--engine", type=ENGINES, default="postgres", show_default=True,
              help="postgres: in the warehouse; spark: Iceberg tables from the lake's bronze ('medallion export').")
@click.option("--dbt", "force_dbt", is_flag=True,
              help="Start dbt even when the statements its last build stored could do it (they are the same SQL).")
@friendly_errors
def build(full_refresh: bool, skip_tests: bool, full_tests: bool, engine: str, force_dbt: bool) -> None:
    """Build silver (and gold) from bronze with dbt: every model, then its tests.

    Incremental: each model reads only the bronze rows past its watermark, and the tests check
    the keys those rows changed (--full-tests: whole tables). A failing model or test stops
    with one line naming it.

    When the project is the one the last dbt build ran (its files, dbt's version, bronze's
    table schemas), the build runs the statements and compiled tests that build stored, in its
    order, without starting dbt: the same SQL in a second instead of ten. Anything they cannot
    carry (a changed project, a schema change, a truncate, a re-sync) runs dbt, which stores
    them anew; the last line says which ran.

    \b
    Examples:
      medallion build                   # apply what bronze gained since the last build
      medallion build --full-refresh    # rebuild silver and gold from all of bronze
      medallion build --skip-tests      # a quick refresh; constraints still hold, tests run nightly
      medallion build --full-tests      # the nightly full test: every history and current view, whole
      medallion build --engine spark    # the same models on Spark, from the Iceberg lake
    """
    if skip_tests and full_tests:
        raise click.UsageError("--skip-tests and --full-tests exclude each other")
    _print_build(pipeline.build(resolve(), full_refresh, tests=not skip_tests, engine=engine,
                                full_tests=full_tests, stored=not force_dbt))


@cli.command("dbt-setup")
@friendly_errors
def dbt_setup() -> None:
    """Make your own dbt project ([transform] dbt_project) buildable by dbt's own commands.

    Installs two local packages into it (packages.yml and dbt_packages/, as `dbt deps` would):
    medallion (the engine's materializations and macros) and medallion_silver (silver's models,
    generated from bronze under MEDALLION_HOME; run it again after a new table is captured).
    `medallion build` needs none of this; the next one starts dbt once (packages.yml changed).

    \b
    Example:
      medallion dbt-setup
      eval "$(medallion env --dbt)"     # the warehouse profile medallion writes (DBT_PROFILES_DIR, DBT_PROFILE)
      dbt build --project-dir my_dbt    # silver and gold; the next 'medallion build' needs no dbt
      dbt docs generate --project-dir my_dbt
    """
    from medallion.dbt_setup import setup

    done = setup(load_settings())
    for name, folder in done.packages.items():
        out.print(f"{name}: {folder}")
    out.print(f"set up {done.path}: eval \"$(medallion env --dbt)\"; dbt build --project-dir {done.path}")



@cli.command()
@click.option("--follow", is_flag=True,
              help="Keep going until Ctrl-C: stream the source and apply each batch to silver and gold as it "
                   "lands (seconds behind the source), without a dbt start per batch.")
@click.option("--give-up-after", default=300.0, show_default=True, type=click.FloatRange(min=0),
              help="With --follow: seconds without a connection to the source or the warehouse before giving up.")
@click.option("--full-tests", is_flag=True,
              help="Test whole tables, not only the keys bronze changed since the last passing build.")
@click.option("--engine", type=ENGINES, default="postgres", show_default=True,
              help="Where silver and gold are built: the warehouse PostgreSQL, or Spark on the Iceberg lake.")
@metrics_options
@friendly_errors
def run(follow: bool, give_up_after: float, full_tests: bool, engine: str, metrics_port: int | None,
        metrics_address: str | None) -> None:
    """The nightly job: ingest (bronze up to date), export to the lake when [lake] is configured,
    then build (silver and gold).

    With --follow, one long-running process: it ingests continuously and applies each new
    stretch of bronze to silver and then gold with the statements dbt stored at its last build
    (a schema change, a truncate or a re-sync runs a dbt build instead). Ctrl-C or SIGTERM
    stops it cleanly (the first dbt build, if in progress, is interrupted); a later `medallion build`
    continues from where it stopped. A restart of the source or the warehouse is ridden out
    (--give-up-after). Run the tested build (`medallion build`) nightly beside it: the
    follower's rounds wait while it runs, so its tests see one state; `reset` is refused.

    \b
    Examples:
      medallion run && psql "$MEDALLION_WAREHOUSE_DSN" -c 'select * from silver.dim_customer_as_of(now())'
      medallion run --follow            # silver and gold seconds behind the source, until Ctrl-C
      medallion run --engine spark     # silver and gold as Iceberg tables, built by Spark
    """
    if follow:
        if not engine_named(engine).stored_steps:  # a follow applies the steps dbt stored
            raise click.UsageError("--follow applies bronze to the warehouse's silver and gold: use it with "
                                   "--engine postgres")
        from medallion import metrics
        from medallion.follow import follow as follow_source

        last = [0.0]

        def on_round(report: FollowReport) -> None:
            metrics.refreshed()
            if time.monotonic() - last[0] >= 5.0:
                err.print(f"[dim]{time.strftime('%H:%M:%S')}  {report.changes:,} changes ingested, "
                          f"{report.applied:,} model refreshes, {report.builds} dbt builds[/]", highlight=False)
                last[0] = time.monotonic()

        ctx = resolve()
        with _serving_metrics(ctx, follow, metrics_port, metrics_address):
            followed = follow_source(ctx, note, on_round, give_up_after=give_up_after)
        out.print(f"stopped: {followed.changes:,} changes ingested, {followed.applied:,} model refreshes in "
                  f"{followed.passes:,} rounds, {followed.builds} dbt builds; 'medallion build' continues from here")
        return
    ctx = resolve()
    with _serving_metrics(ctx, follow, metrics_port, metrics_address):  # none without --follow
        report = pipeline.run(ctx, note, engine, full_tests)
    out.print(f"ingested: {report.ingest.snapshot_rows:,} snapshot rows, {report.ingest.changes:,} changes")
    if report.export is not None:
        out.print(f"exported to the lake: {report.export.rows:,} bronze rows ({report.export.seconds:.1f}s)")
    _print_build(report.build)


@cli.command()
@click.option("--chunk-rows", type=click.IntRange(min=1), default=None,
              help="Bronze rows per Iceberg commit (whole source transactions; default 200,000).")
@friendly_errors
def export(chunk_rows: int | None) -> None:
    """Export bronze to Apache Iceberg ([lake] in medallion.toml), exactly once.

    Appends each bronze table's rows past the position its Iceberg table records (in the
    snapshot summary, committed with the rows), in commit order. Safe to stop and re-run.

    \b
    Examples:
      medallion export
      medallion export --chunk-rows 50000
    """
    report = pipeline.export(resolve(), chunk_rows, on_commit=lambda done: note(
        f"{time.strftime('%H:%M:%S')}  {done.table}: {done.rows:,} rows exported in {done.commits} commits"))
    commits = sum(t.commits for t in report.tables)
    out.print(f"exported: {report.rows:,} bronze rows to {len(report.tables)} Iceberg tables in {commits} commits "
              f"({report.seconds:.1f}s)")


def _parse_params(pairs: tuple[str, ...]) -> dict[str, object]:
    params: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--param")
        params[name] = value
    return params


def _print_result_table(result: QueryResult) -> None:
    from rich.text import Text

    from medallion.query import display

    # Text cells: values are data, never rich markup.
    table = Table(*result.columns, title=None)
    for row in result.rows:
        table.add_row(*(Text("null", style="dim") if v is None else Text(str(display(v)))
                        for v in row))
    out.print(table)
    note(f"{len(result.rows):,} row{'s' if len(result.rows) != 1 else ''}")


@cli.command()
@click.argument("sql_text", metavar="SQL")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="table for people; csv (header row, NULL empty) or json (array of objects).")
@click.option("--explain", is_flag=True,
              help="Print the rewritten PostgreSQL and exit; tables are checked, nothing runs.")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="Value for a %(NAME)s placeholder (repeatable).")
@click.option("--known-at", metavar="INSTANT",
              help="Answer every FOR SYSTEM_TIME as the warehouse knew it then (e.g. when a report was "
                   "published): versions loaded later are left out.")
@click.option("--strict", is_flag=True,
              help="Refuse (instead of warning) a question about a time past silver's horizon.")
@click.option("--engine", type=ENGINES, default="postgres", show_default=True,
              help="postgres: the warehouse; spark: the Iceberg lake (the statement transpiled for Spark).")
@friendly_errors
def query(sql_text: str, fmt: str, explain: bool, params: tuple[str, ...], known_at: str | None,
          strict: bool, engine: str) -> None:
    """Run SQL on the warehouse, with SQL:2011 FOR SYSTEM_TIME on any history table.

    A history table (silver.*_hist) has sys_start/sys_end timestamptz columns; each
    version is valid in [sys_start, sys_end). The clause goes after the table name,
    before its alias. SQL - reads the statement from stdin. Runs read-only, as the analyst
    role (MEDALLION_QUERY_DSN, else the warehouse DSN's server as MEDALLION_ANALYST_ROLE,
    default medallion_analyst): writes, COPY ... TO PROGRAM and server files are refused.

    \b
    Forms:
      FOR SYSTEM_TIME AS OF t              the version valid at t
      FOR SYSTEM_TIME FROM a TO b          versions valid at some time in [a, b)
      FOR SYSTEM_TIME BETWEEN a AND b      versions valid at some time in [a, b]
      FOR SYSTEM_TIME CONTAINED IN (a, b)  versions that lie within [a, b)
      FOR SYSTEM_TIME ALL                  every version
    \b
    Examples:
      medallion query "select email from silver.dim_customer_hist
          for system_time as of '2026-11-01 00:00+00' where customer_id = 7"
      medallion query "select customer_id, email, sys_start, sys_end from silver.dim_customer_hist
          for system_time all where customer_id = 7 order by sys_start"
      medallion query "select * from silver.dim_film_hist
          for system_time from now() - interval '30 days' to now() where film_id = 1"
      medallion query "select count(*) from silver.dim_customer_hist
          for system_time between '2026-10-01' and '2026-10-31'"
      medallion query "select * from silver.dim_film_hist
          for system_time contained in ('2026-10-01', '2026-11-01')"
      medallion query --format csv "select customer_id, was.email, cur.email
          from silver.dim_customer_hist for system_time as of now() - interval '7 days' as was
          join silver.dim_customer_hist for system_time as of now() as cur using (customer_id)
          where was.email <> cur.email"
      medallion query -p at='2026-11-01 00:00+00' --format json "select * from
          silver.dim_customer_hist for system_time as of %(at)s where customer_id = 7"
      medallion query --explain "select * from silver.dim_customer_hist
          for system_time as of now() - interval '1 day' as c"
      medallion query --known-at '2026-11-23 06:00+00' "select * from gold.monthly_revenue_as_of(now())"
      medallion query --known-at '2026-11-23 06:00+00' "select sum(amount) from silver.fact_payment_hist
          for system_time as of '2026-11-22 00:00+00'"
      medallion query - < question.sql
      medallion query --engine spark "select * from silver.dim_customer_hist
          for system_time as of '2026-11-01 00:00+00' where customer_id = 7"

    \b
    Two time axes: FOR SYSTEM_TIME is the source's time (what the source held at t);
    --known-at is the warehouse's (what had been loaded by k). A question about a time later
    than silver's horizon (see 'medallion status') prints a warning; --strict refuses it.
    """
    ctx = resolve()
    text = sys.stdin.read() if sql_text == "-" else sql_text
    if explain:
        click.echo(pipeline.explain_query(ctx, text, known_at, engine))
        return
    result = pipeline.query(ctx, text, _parse_params(params) or None, known_at, strict, engine)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    from medallion.query import to_csv, to_json

    if fmt == "csv":
        click.echo(to_csv(result), nl=False)
    elif fmt == "json":
        click.echo(to_json(result))
    else:
        _print_result_table(result)


@cli.command()
@click.option("--port", "-p", type=click.IntRange(1, 65535), default=3000, show_default=True,
              help="Port of the Dagster webserver.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@friendly_errors
def ui(port: int, host: str) -> None:
    """Open the Dagster UI (dagster dev) on the pipeline: assets by layer, jobs, schedules.

    Loads the project the command finds (MEDALLION_CONFIG or ./medallion.toml): run it in your
    project's folder. Starts the embedded cluster when it is the one in use. Runs and schedule
    state are kept in MEDALLION_HOME/dagster. Ctrl-C (or SIGTERM) stops it. See docs/orchestration.md.

    \b
    Examples:
      medallion ui                   # http://127.0.0.1:3000, on the embedded default
      medallion ui --port 3001
      medallion ui --host 0.0.0.0    # reachable from other machines
      MEDALLION_HOME=/data/lake medallion ui
    """
    from medallion.orchestration.ui import dagster_dev, definitions_problem, serve

    settings = load_settings()
    if settings.embedded:
        note(pipeline.up(settings))
    command = dagster_dev(settings, host, port)
    problem = definitions_problem(settings)  # printed here; the page shows it too
    if problem:
        err.print(f"[yellow]warning:[/] {escape(problem)}", highlight=False)
    note(f"Dagster UI at {command.url} on {settings.config_path or 'the default selection'} "
         f"(runs kept in {command.dagster_home}); Ctrl-C stops it")
    try:
        code = serve(command, note)
    except OSError as exc:
        raise MedallionError(f"cannot start {command.argv[0]}: {exc.strerror}; run 'make setup' "
                             "(the dagster packages are in the project's dev extra)") from None
    # the in-process definitions check left Dagster's and dbt's worker threads behind: exit now,
    # rather than wait for them to wind down (seconds) after the UI is already gone
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    cli(prog_name="medallion")


if __name__ == "__main__":
    main()
