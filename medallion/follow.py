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

from medallion import pipeline, steps
from medallion.bronze.ingest import stop_on_interrupt
from medallion.db import connect, endpoints
from medallion.errors import MedallionError
from medallion.health import PublicationWatch
from medallion.settings import Settings

POLL_SECONDS = 0.5  # longest wait for an ingester batch before looking at bronze anyway
IDLE_EVERY = 1.0  # seconds between two horizon moves of an idle source


@dataclass
class FollowReport:
    applied: int = 0  # model refreshes done by stored steps
    builds: int = 0  # dbt builds: the first one and every fallback
    passes: int = 0  # rounds over the models that found new bronze
    changes: int = 0  # changes the ingester wrote to bronze
    build_reasons: list[str] = field(default_factory=list)


class Applier:
    """Runs the stored steps of one layer against the warehouse, on a connection of its own."""

    def __init__(self, settings: Settings, layer: int) -> None:
        self.conn = connect(endpoints(settings).warehouse, "warehouse")
        self.layer = layer
        self.steps: list[steps.Step] = []
        self.idle_at = 0.0

    def close(self) -> None:
        self.conn.close()

    def reload(self) -> str | None:
        """Read the steps the last build stored; a reason when some model has none yet."""
        self.steps = [step for step in steps.load_steps(self.conn) if step.layer == self.layer]
        self.conn.commit()
        missing = [s.model for s in self.steps if s.step_sql is None]
        if not self.steps and self.layer == 1:
            return "no stored steps yet"
        return f"{', '.join(missing)} stored no step yet (built from scratch)" if missing else None

    def apply(self) -> tuple[int, str | None]:
        """One round: (models refreshed, the reason a dbt build is needed instead, if any)."""
        return self._apply_silver() if self.layer == 1 else self._apply_gold()

    def _apply_silver(self) -> tuple[int, str | None]:
        applied = 0
        idle_due = time.monotonic() - self.idle_at >= IDLE_EVERY
        for step in self.steps:
            moved, needs_build = steps.apply_silver(self.conn, step, idle=idle_due)
            if needs_build:
                return applied, needs_build
            applied += moved
        if idle_due:
            self.idle_at = time.monotonic()
        return applied, None

    def _apply_gold(self) -> tuple[int, str | None]:
        applied = 0
        for step in self.steps:
            if needs_build := steps.apply_gold(self.conn, step):
                return applied, needs_build
            applied += 1
        return applied, None


class Follower:
    """Silver in the main thread, after every bronze batch; gold in a thread of its own, after
    silver moved, so that a slow mart never holds silver back. dbt builds (the start, and what a
    stored step cannot carry) run with both paused."""

    def __init__(self, settings: Settings, report: FollowReport, notify: Callable[[str], None],
                 on_round: Callable[[FollowReport], None]) -> None:
        self.settings = settings
        self.report = report
        self.notify = notify
        self.on_round = on_round
        self.silver = Applier(settings, 1)
        self.gold = Applier(settings, 2)
        self.paused = threading.Lock()  # held by a gold round and by a dbt build
        self.silver_moved = threading.Event()
        self.stop_gold = threading.Event()
        self.gold_needs: list[str] = []
        self.gold_failure: list[BaseException] = []
        self.gold_thread = threading.Thread(target=self._gold_loop, name="medallion-follow-gold", daemon=True)

    def close(self) -> None:
        self.stop_gold.set()
        self.silver_moved.set()
        if self.gold_thread.is_alive():
            self.gold_thread.join(120)
        self.silver.close()
        self.gold.close()

    def build(self, reason: str) -> None:
        with self.paused:
            self.notify(f"dbt build: {reason}")
            pipeline.build(self.settings, tests=False, stored=False)
            self.report.builds += 1
            self.report.build_reasons.append(reason)
            for applier in (self.silver, self.gold):
                if (missing := applier.reload()) is not None:
                    self.notify(f"dbt build: {missing}")
                    pipeline.build(self.settings, tests=False, stored=False)  # an incremental build stores every step
                    self.report.builds += 1
                    if (still := applier.reload()) is not None:
                        raise MedallionError(f"run --follow cannot go on: {still}; check 'medallion build' first")
            self.silver_moved.set()  # gold reads the steps the build stored

    def start(self) -> None:
        self.build("the first build of this follow")
        self.gold_thread.start()

    def round(self) -> None:
        """Silver once; a build when silver or gold asked for one; gold woken when silver moved."""
        if self.gold_failure:
            raise self.gold_failure[0]
        applied, needs_build = self.silver.apply()
        self.report.applied += applied
        if needs_build is None and self.gold_needs:
            needs_build = self.gold_needs.pop()
        if needs_build:
            self.build(needs_build)
        if applied or needs_build:
            self.silver_moved.set()
            self.report.passes += 1
            self.on_round(self.report)

    def finish(self) -> None:
        """After the ingester stopped: the last silver round, then gold in this thread."""
        self.stop_gold.set()
        self.silver_moved.set()
        self.gold_thread.join(300)
        if self.gold_failure:
            raise self.gold_failure[0]
        self.round()
        with self.paused:
            applied, needs_build = self.gold.apply()
            self.report.applied += applied
        if needs_build:
            self.build(needs_build)

    def _gold_loop(self) -> None:
        try:
            while not self.stop_gold.is_set():
                self.silver_moved.wait(POLL_SECONDS)
                if self.stop_gold.is_set():
                    return
                if not self.silver_moved.is_set():
                    continue
                self.silver_moved.clear()
                with self.paused:
                    applied, needs_build = self.gold.apply()
                    self.report.applied += applied
                if needs_build:
                    self.gold_needs.append(needs_build)  # the main thread runs the build
        except BaseException as exc:  # noqa: BLE001 - raised in the main thread at its next round
            self.gold_failure.append(exc)


def follow(settings: Settings, notify: Callable[[str], None] = lambda _: None,
           on_round: Callable[[FollowReport], None] = lambda _: None, batch_size: int | None = None,
           give_up_after: float = 300.0) -> FollowReport:
    """Ingest and apply until SIGINT/SIGTERM; see the module's docstring."""
    report = FollowReport()
    first = pipeline.ingest(settings, notify=notify)  # the snapshot and what is pending, then the first build
    report.changes += first.changes
    follower = Follower(settings, report, notify, on_round)
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
        follower.start()
        with stop_on_interrupt() as requested:
            ingester.start()
            notify("following the source; Ctrl-C stops after the current batch")
            watch = PublicationWatch(settings, notify)  # a selected table the publication does not send
            while not requested() and ingester.is_alive():
                wake.wait(POLL_SECONDS)
                wake.clear()
                follower.round()
                watch.poll()
        stop.set()
        ingester.join()
        if failure:
            raise failure[0]
        follower.finish()  # what the last batch brought, through gold
    finally:
        stop.set()
        if ingester.is_alive():
            ingester.join(60)
        follower.close()
    return report
