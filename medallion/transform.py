"""Silver and gold: the dbt project medallion generates (medallion/silver/project.py), built
in-process against the warehouse.

`dbt build` runs every model and every test of the project in DAG order: silver's generated
histories first, then the project's own models (e.g. Pagila's gold in transform/). dbt runs
inside this process (dbtRunner): no subprocess, no dbt on PATH, and a failure comes back as
data that becomes one BuildFailed naming the failing node. An incremental build of a project
the last dbt build ran unchanged runs what that build stored instead (stored_build.py).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


from medallion.bronze import store
from medallion.context import Context
from medallion.db import connect
from medallion.engines import POSTGRES, Engine
from medallion.dbt_profile import dbt_profile, profile_env  # noqa: F401  (transform.profile_env: callers)
from medallion.errors import BuildFailed, BuildInterrupted, MedallionError
from medallion.silver.project import BuildProject, write_project

FAILED_STATUSES = {"error", "fail", "runtime error"}
# dbt's tests over whole tables instead of the keys changed since the last passing build
FULL_TESTS_VARS = '{"medallion_full_tests": true}'


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str
    seconds: float
    message: str | None


@dataclass
class BuildReport:
    nodes: list[NodeResult] = field(default_factory=list)
    seconds: float = 0.0  # wall clock of the whole build, dbt's parsing included
    notes: list[str] = field(default_factory=list)  # what silver could not build, and why
    dbt_reason: str | None = None  # why dbt ran; None: the stored statements did it all (stored_build.py)

    def count(self, resource_type: str) -> int:
        """Nodes of one kind (model, test) that dbt built or ran."""
        return sum(1 for n in self.nodes if n.unique_id.startswith(resource_type + "."))


def dbt_args(ctx: Context, command: str, project_dir: Path, full_refresh: bool = False,
             select: tuple[str, ...] = (), engine: Engine = POSTGRES, profiles_dir: Path | None = None) -> list[str]:
    """Arguments for one dbt command; dbt's target/ and logs/ live under MEDALLION_HOME.

    dbt writes nothing to the console (the caller reports, and failures become BuildFailed);
    its full debug log stays in the log file that BuildFailed points to. No --vars: what a
    build gives its models (whole-table tests, the project's fingerprint) goes through
    gold.jinja.giving, so that dbt's vars never change and its partial parsing holds."""
    work = engine.work_dir(ctx.home)
    args = [command, "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir or project_dir),
            "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
            "--log-level", "none", "--log-level-file", "debug"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", *select]
    return args


def _first_line(text: str | None) -> str:
    """dbt's message on one line: its heading and the database's first line of reason."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return ": ".join(lines[:2]) if lines else "no message"


def prepare_project(ctx: Context, predict: bool = False, engine: Engine = POSTGRES) -> BuildProject:
    """Write the build project for what bronze holds now, the project's own dbt linked in as a package.

    predict: before the first ingest, plan for the selection as the source's catalog resolves it
    (what the first ingest will capture), so that Dagster can show the asset graph."""
    with connect(ctx.endpoints.warehouse, "warehouse") as conn:
        recorded = store.recorded_tables(conn)
    if not recorded and predict:
        recorded = _predicted(ctx)
    if not recorded:
        raise MedallionError("bronze has captured no table yet: run 'medallion ingest' (or 'medallion run') first")
    return write_project(ctx.home, ctx.config, recorded, engine)


def _predicted(ctx: Context) -> dict[str, store.RecordedTable]:
    from medallion.selection import read_plan

    with connect(ctx.endpoints.source, "source") as conn:
        return read_plan(ctx.config, conn).predicted_records()



def _drop_renamed(ctx: Context, project: BuildProject) -> None:
    """Silver relations under the old name of a table the source renamed: dropped, said in a note
    (medallion.silver.renames)."""
    from medallion.silver.renames import drop_retired

    with connect(ctx.endpoints.warehouse, "warehouse") as conn:
        dropped = drop_retired(conn, ctx.config, project.silver)
    if dropped:
        project.notes.append(f"dropped {', '.join(dropped)}: the source renamed the table, whose whole history "
                             "is now under its new name")


def build(ctx: Context, full_refresh: bool = False, select: tuple[str, ...] = (),
          tests: bool = True, engine: Engine = POSTGRES, full_tests: bool = False,
          stored: bool = True) -> BuildReport:
    """`dbt build` of silver (generated) and the project's own models: every model, then its
    tests, in DAG order.

    select narrows it with dbt selectors (e.g. ("silver",) for the silver folder). tests=False
    runs the models only (`dbt run`): for frequent refreshes between tested builds; the
    database constraints (keys, no overlaps) still hold on every write. Tests check the keys
    bronze changed since the last passing build; full_tests checks whole tables (nightly).

    stored: when the project is the one the last dbt build ran, run the statements and tests
    that build stored instead of starting dbt (stored_build.py; same SQL, a second instead of
    ten); dbt whenever they cannot carry the batch. Raises BuildFailed naming the first failing
    model or test (and how many others failed)."""
    began = time.perf_counter()
    with engine.dbt_session(ctx) as profiles_dir:
        project = prepare_project(ctx, engine=engine)
        if engine.in_warehouse:
            _drop_renamed(ctx, project)
        fingerprint = None
        reason = "asked for with --dbt" if not stored else None if engine.stored_steps \
            else f"the {engine.name} engine always builds with dbt"
        if engine.stored_steps:
            from medallion import stored_build

            fingerprint = stored_build.project_fingerprint(ctx.endpoints.warehouse, project)
            if full_refresh or select or full_tests:
                reason = "--full-refresh rebuilds every table from bronze" if full_refresh \
                    else "--full-tests checks whole tables" if full_tests else "a selection of models is built by dbt"
            if reason is None:
                done = stored_build.run(ctx.endpoints.warehouse, fingerprint, tests)
                if done.dbt_reason is None:
                    from medallion.gold.notes import stored_notes

                    return BuildReport(nodes=[NodeResult(*r) for r in done.results],
                                       seconds=time.perf_counter() - began,
                                       notes=list(project.notes) + stored_notes(ctx.endpoints.warehouse))
                reason = done.dbt_reason
        report = _dbt_build(ctx, project, full_refresh, select, tests, engine, full_tests, profiles_dir,
                            fingerprint)
    report.seconds = time.perf_counter() - began
    report.dbt_reason = reason or engine.name
    return report


@contextmanager
def _interrupts_noticed() -> Iterator[threading.Event]:
    """Ctrl-C (SIGINT) during dbt, noticed by medallion itself: dbt hands back a KeyboardInterrupt
    raised while its nodes run, but one that lands while it starts up was seen to vanish (the
    build went on and exited 0). The previous handler still runs (it raises KeyboardInterrupt,
    or is run --follow's stop)."""
    noticed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield noticed  # only the main thread receives signals
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        noticed.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield noticed
    finally:
        signal.signal(signal.SIGINT, previous)


def _dbt_build(ctx: Context, project: BuildProject, full_refresh: bool, select: tuple[str, ...],
               tests: bool, engine: Engine, full_tests: bool, profiles_dir: Path | None,
               fingerprint: str | None) -> BuildReport:
    args = dbt_args(ctx, "build" if tests else "run", project.path, full_refresh, select, engine, profiles_dir)
    from medallion import dbt_run
    from medallion.gold.jinja import giving
    from medallion.gold.notes import NOTES

    NOTES.clear()
    # the fingerprint is stored with each model's steps (follow.sql): the project they belong to
    with _interrupts_noticed() as interrupted, giving(full_tests=full_tests, fingerprint=fingerprint):
        outcome = dbt_run.invoke(args)
    report = BuildReport(notes=list(project.notes) + NOTES)
    run = outcome.result
    for result in getattr(run, "results", None) or []:
        report.nodes.append(NodeResult(result.node.unique_id, str(result.status), float(result.execution_time or 0),
                                       result.message))
    if isinstance(outcome.exception, KeyboardInterrupt) or interrupted.is_set():  # dbt hands it back without a message
        raise BuildInterrupted(f"interrupted (Ctrl-C) during the dbt build of {project.path}: every model keeps "
                               "what its last finished statement committed; the next 'medallion build' continues "
                               "from there")
    failed = [n for n in report.nodes if n.status in FAILED_STATUSES]
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more failing: {', '.join(n.unique_id for n in failed[1:4])})" \
            if len(failed) > 1 else ""
        raise BuildFailed(f"dbt build failed at {first.unique_id}: {_first_line(first.message)}{more}; "
                          f"details in {Path(args[args.index('--log-path') + 1]) / 'dbt.log'}",
                          node=first.unique_id, failed=[n.unique_id for n in failed])
    if not outcome.success:
        reason = _first_line(str(outcome.exception)) if outcome.exception else "dbt reported a failure"
        raise BuildFailed(f"dbt could not build {project.path}: {reason}", node=None, failed=[])
    if fingerprint and not select:
        from medallion import stored_build

        stored_build.record(ctx.endpoints.warehouse, fingerprint, Path(args[args.index("--target-path") + 1]) / "manifest.json",
                            tested=tests and not full_tests)  # whole-table tests: the next build's are kept
    return report
