"""`medallion run --follow`: bronze, silver and gold kept up with the source, continuously.

One process: an ingester thread streams the slot into bronze; the main thread applies each
new stretch of bronze to silver and then gold as soon as it is committed, without starting
dbt for it. dbt remains the single definition of every model: each incremental build stores,
per model, the statements of its next batch in silver.follow_step (macros/follow.sql), with
the batch's bronze bounds left as placeholders. A step here fills in the bounds and runs them
in one transaction with the model's lock and watermark, exactly what the next `medallion
build` would have run. A stretch a stored step cannot carry (a schema change, a truncate, a
re-sync epoch) is applied by a dbt build instead, which stores fresh steps.

Stopping (Ctrl-C, SIGTERM) lets the ingester finish its batch, applies what bronze holds and
returns; a later `medallion build` continues from the watermarks and gives what a build from
scratch would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from medallion import pipeline
from medallion.bronze.ingest import stop_on_interrupt
from medallion.db import connect, endpoints
from medallion.errors import MedallionError
from medallion.settings import Settings

POLL_SECONDS = 0.5  # longest wait for an ingester batch before looking at bronze anyway
IDLE_EVERY = 1.0  # seconds between two horizon moves of an idle source


@dataclass(frozen=True)
class Step:
    """What a model's next incremental batch runs, as its last build stored it."""

    model: str
    layer: int  # 1 silver, 2 gold
    lock_sql: str
    high_sql: str | None
    needs_build_sql: str | None
    step_sql: str | None
    idle_sql: str | None


@dataclass
class FollowReport:
    applied: int = 0  # model refreshes done by stored steps
    builds: int = 0  # dbt builds: the first one and every fallback
    passes: int = 0  # rounds over the models that found new bronze
    changes: int = 0  # changes the ingester wrote to bronze
    build_reasons: list[str] = field(default_factory=list)


def fill(text: str, lo: int, hi: int) -> str:
    """A stored statement with its batch bounds (bronze commit positions, integers) filled in."""
    return text.replace("__lo__", str(int(lo))).replace("__hi__", str(int(hi)))


def load_steps(conn: psycopg.Connection) -> list[Step]:
    if conn.execute("select to_regclass('silver.follow_step') is null").fetchone()[0]:
        return []
    rows = conn.execute("select model, layer, lock_sql, high_sql, needs_build_sql, step_sql, idle_sql "
                        "from silver.follow_step order by layer, model").fetchall()
    return [Step(*row) for row in rows]


class Applier:
    """Runs the stored steps against the warehouse: silver's models, then gold's when silver moved."""

    def __init__(self, settings: Settings) -> None:
        self.conn = connect(endpoints(settings).warehouse, "warehouse")
        self.steps: list[Step] = []
        self.idle_at = 0.0

    def close(self) -> None:
        self.conn.close()

    def reload(self) -> str | None:
        """Read the steps the last build stored; a reason when some model has none yet."""
        self.steps = load_steps(self.conn)
        self.conn.commit()
        missing = [s.model for s in self.steps if s.step_sql is None]
        if not self.steps:
            return "no stored steps yet"
        return f"{', '.join(missing)} stored no step yet (built from scratch)" if missing else None

    def apply(self) -> tuple[int, str | None]:
        """One round: (models refreshed, the reason a dbt build is needed instead, if any)."""
        applied = 0
        idle_due = time.monotonic() - self.idle_at >= IDLE_EVERY
        silver_moved = False
        for step in self.steps:
            if step.layer != 1:
                continue
            with self.conn.transaction():
                self.conn.execute(step.lock_sql)
                lo = self.conn.execute("select coalesce(max(last_commit_lsn), -1) from silver.build_watermark "
                                       "where model = %s", [step.model]).fetchone()[0]
                hi = self.conn.execute(fill(step.high_sql or "select -1", lo, lo)).fetchone()[0]
                if hi > lo:
                    if self.conn.execute(fill(step.needs_build_sql or "select false", lo, hi)).fetchone()[0]:
                        return applied, f"{step.model}: a schema change, truncate or re-sync in bronze"
                    self.conn.execute(fill(step.step_sql or "", lo, hi))
                    applied += 1
                    silver_moved = True
                elif hi >= 0 and idle_due and step.idle_sql:
                    self.conn.execute(fill(step.idle_sql, hi, hi))  # the horizon moves with an idle source
        if idle_due:
            self.idle_at = time.monotonic()
        if silver_moved:
            for step in self.steps:
                if step.layer == 2 and step.step_sql:
                    with self.conn.transaction():
                        self.conn.execute(step.lock_sql)
                        if step.needs_build_sql and self.conn.execute(step.needs_build_sql).fetchone()[0]:
                            return applied, f"{step.model}: every line must be compared (a stretch it has not seen)"
                        self.conn.execute(step.step_sql)
                    applied += 1
        return applied, None


def follow(settings: Settings, notify: Callable[[str], None] = lambda _: None,
           on_round: Callable[[FollowReport], None] = lambda _: None, batch_size: int | None = None,
           give_up_after: float = 300.0) -> FollowReport:
    """Ingest and apply until SIGINT/SIGTERM; see the module's docstring."""
    report = FollowReport()

    def build(reason: str) -> None:
        notify(f"dbt build: {reason}")
        pipeline.build(settings, tests=False)
        report.builds += 1
        report.build_reasons.append(reason)

    first = pipeline.ingest(settings, notify=notify)  # the snapshot and what is pending, then the first build
    report.changes += first.changes
    build("the first build of this follow")
    applier = Applier(settings)
    stop = threading.Event()
    wake = threading.Event()
    failure: list[BaseException] = []

    def on_batch(result: object, _lag: object) -> None:
        report.changes += getattr(result, "changes", 0)
        wake.set()

    def ingest() -> None:
        try:
            kwargs = {"batch_size": batch_size} if batch_size else {}
            pipeline.ingest(settings, follow=True, notify=notify, on_batch=on_batch, should_stop=stop.is_set,
                            give_up_after=give_up_after, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            failure.append(exc)
        finally:
            wake.set()

    ingester = threading.Thread(target=ingest, name="medallion-follow-ingest", daemon=True)
    try:
        missing = applier.reload()
        if missing:
            build(missing)
            if (still := applier.reload()) is not None:
                raise MedallionError(f"run --follow cannot start: {still}; check 'medallion build' first")
        with stop_on_interrupt() as requested:
            ingester.start()
            notify("following the source; Ctrl-C stops after the current batch")
            while not requested() and ingester.is_alive():
                wake.wait(POLL_SECONDS)
                wake.clear()
                _round(applier, report, build, on_round)
        stop.set()
        ingester.join()
        if failure:
            raise failure[0]
        _round(applier, report, build, on_round)  # what the last batch brought
    finally:
        stop.set()
        if ingester.is_alive():
            ingester.join(60)
        applier.close()
    return report


def _round(applier: Applier, report: FollowReport, build: Callable[[str], None],
           on_round: Callable[[FollowReport], None]) -> None:
    applied, needs_build = applier.apply()
    report.applied += applied
    if needs_build:
        build(needs_build)
        if (missing := applier.reload()) is not None:
            build(missing)
            applier.reload()
    if applied or needs_build:
        report.passes += 1
        on_round(report)
