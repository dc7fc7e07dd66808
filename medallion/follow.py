"""`medallion run --follow`: bronze, silver and gold kept up with the source, continuously.

One process: an ingester thread streams the slot into bronze; the main thread applies each
new stretch of bronze to silver and then gold as soon as it is committed, without starting
dbt for it. dbt remains the single definition of every model: each incremental build stores,
per model, the statements of its next batch in medallion.follow_step (macros/follow.sql), with
the batch's bronze bounds left as placeholders. A step here fills in the bounds and runs them
in one transaction with the model's lock and watermark, exactly what the next `medallion
build` would have run. A stretch a stored step cannot carry (a schema change, a truncate, a
re-sync epoch) is applied by a dbt build instead, which stores fresh steps.

Stopping (Ctrl-C, SIGTERM) lets the ingester finish its batch, applies what bronze holds and
returns; during the first dbt build, it interrupts the build (each model commits with its
watermark) and returns. A later `medallion build` continues from the watermarks and gives what a build from
scratch would. A restart of the warehouse or the source is ridden out like `ingest --follow`
does: one line, reconnect with backoff, go on from the watermarks (a dbt build it cut runs
again). The follow holds medallion.locks' IN_USE lock for its whole life: no reset meanwhile.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg

from medallion import locks, pipeline, steps
from medallion.bronze.ingest import connection_lost
from medallion.db import connect
from medallion.errors import BuildFailed, BuildInterrupted, ConnectionFailed, ConnectionLost, MedallionError
from medallion.health import PublicationWatch
from medallion.context import Context
from medallion.settings import Settings

T = TypeVar("T")

POLL_SECONDS = 0.5  # longest wait for an ingester batch before looking at bronze anyway
IDLE_EVERY = 1.0  # seconds between two horizon moves of an idle source


@dataclass
class FollowReport:
    applied: int = 0  # model refreshes done by stored steps
    builds: int = 0  # dbt builds: the first one and every fallback
    passes: int = 0  # rounds over the models that found new bronze
    changes: int = 0  # changes the ingester wrote to bronze
    build_reasons: list[str] = field(default_factory=list)


class Outage:
    """A lost warehouse connection, as the silver and gold appliers and the builds of a follow
    meet it: said in one line, retried with backoff, given up after give_up_after seconds (the
    ingester rides out its own, pipeline.ingest). epoch counts outages: a connection opened
    before the last one is opened again before it is used."""

    def __init__(self, notify: Callable[[str], None], give_up_after: float, should_stop: Callable[[], bool]) -> None:
        self.notify = notify
        self.give_up_after = give_up_after
        self.should_stop = should_stop
        self.lock = threading.Lock()
        self.since: float | None = None
        self.delay = 1.0
        self.epoch = 0

    def wait(self, lost: ConnectionLost) -> None:
        """Wait the backoff (less when a stop is asked for); ConnectionLost once it lasted too long."""
        with self.lock:
            now = time.monotonic()
            if self.since is None:
                self.since = now
                self.epoch += 1
                self.notify(f"silver and gold: {lost}; reconnecting (giving up after {self.give_up_after:.0f}s)")
            if now - self.since > self.give_up_after:
                raise ConnectionLost(f"{lost}; gave up after {self.give_up_after:.0f}s without a connection: check "
                                     "the warehouse, then run 'medallion run --follow' again") from None
            delay, self.delay = self.delay, min(self.delay * 2, 10.0)
        end = time.monotonic() + delay
        while time.monotonic() < end and not self.should_stop():
            time.sleep(0.1)

    def over(self) -> None:
        with self.lock:
            if self.since is not None:
                self.notify(f"silver and gold: reconnected after {time.monotonic() - self.since:.1f}s: applying "
                            "from the watermarks")
            self.since, self.delay = None, 1.0


class Stop:
    """SIGINT/SIGTERM for the whole follow. The first asks to stop at the next safe point: after
    the ingester's batch in hand, or now during the first dbt build (KeyboardInterrupt in dbt,
    which cancels its queries; each model it committed is kept with its watermark). A second
    stops now."""

    def __init__(self) -> None:
        self.requested = False
        self.building = False
        self.signals = 0

    def __call__(self) -> bool:
        return self.requested

    def handler(self, signum: int, frame: object) -> None:
        self.signals += 1
        if self.requested or self.building:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def installed(self) -> Iterator[Stop]:
        previous = {sig: signal.signal(sig, self.handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


class Stopped(Exception):
    """A requested stop interrupted a dbt build: the follow ends, cleanly."""


class Applier:
    """Runs the stored steps of one layer against the warehouse, on a connection of its own."""

    def __init__(self, ctx: Context, layer: int) -> None:
        self.dsn = ctx.endpoints.warehouse
        self.conn: psycopg.Connection | None = None
        self.epoch = -1
        self.layer = layer
        self.steps: list[steps.Step] = []
        self.idle_at = 0.0

    def connected(self, epoch: int) -> psycopg.Connection:
        """The connection, opened again when it broke or an outage began since it was opened."""
        if self.conn is None or self.conn.closed or self.conn.broken or self.epoch != epoch:
            self.close()
            self.conn = connect(self.dsn, "warehouse")
            self.epoch = epoch
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def reload(self, epoch: int) -> str | None:
        """Read the steps the last build stored; a reason when some model has none yet."""
        conn = self.connected(epoch)
        self.steps = [step for step in steps.load_steps(conn) if step.layer == self.layer]
        conn.commit()
        missing = [s.model for s in self.steps if s.step_sql is None]
        if not self.steps and self.layer == 1:
            return "no stored steps yet"
        return f"{', '.join(missing)} stored no step yet (built from scratch)" if missing else None

    def apply(self, epoch: int) -> tuple[int, str | None]:
        """One round: (models refreshed, the reason a dbt build is needed instead, if any). A
        build beside the follower waits for the round, and the round for the build (locks.py)."""
        conn = self.connected(epoch)
        with locks.round_of_steps(conn):
            return self._apply_silver(conn) if self.layer == 1 else self._apply_gold(conn)

    def _apply_silver(self, conn: psycopg.Connection) -> tuple[int, str | None]:
        applied = 0
        idle_due = time.monotonic() - self.idle_at >= IDLE_EVERY
        for step in self.steps:
            moved, needs_build = steps.apply_silver(conn, step, idle=idle_due)
            if needs_build:
                return applied, needs_build
            applied += moved
        if idle_due:
            self.idle_at = time.monotonic()
        return applied, None

    def _apply_gold(self, conn: psycopg.Connection) -> tuple[int, str | None]:
        applied = 0
        for step in self.steps:
            if needs_build := steps.apply_gold(conn, step):
                return applied, needs_build
            applied += 1
        return applied, None


# a step's transaction failed on another's (rolled back whole: trying it again is safe); e.g.
# "tuple concurrently updated", seen on the first round after a restart
CONFLICTS = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected, psycopg.errors.InternalError_)

# what dbt says of a query cut by a restart or a network cut (its node fails with that message)
LOST_IN_DBT = ("terminating connection", "server closed the connection", "connection already closed",
               "could not connect", "the database system is", "connection to server", "SSL connection has been closed",
               "could not receive data", "could not send data")


class Follower:
    """Silver in the main thread, after every bronze batch; gold in a thread of its own, after
    silver moved, so that a slow mart never holds silver back. dbt builds (the start, and what a
    stored step cannot carry) run with both paused. A lost warehouse connection (a restart)
    is ridden out: each applier reconnects and goes on from the watermarks; a dbt build it cut
    runs again."""

    def __init__(self, ctx: Context, report: FollowReport, notify: Callable[[str], None],
                 on_round: Callable[[FollowReport], None], outage: Outage, stop: Stop) -> None:
        self.ctx = ctx
        self.report = report
        self.notify = notify
        self.on_round = on_round
        self.outage = outage
        self.stop = stop
        self.silver = Applier(ctx, 1)
        self.gold = Applier(ctx, 2)
        self.paused = threading.Lock()  # held by a gold round and by a dbt build
        self.silver_moved = threading.Event()
        self.stop_gold = threading.Event()
        self.gold_needs: list[str] = []
        self.gold_failure: list[BaseException] = []
        self.first_build = False
        self.gold_thread = threading.Thread(target=self._gold_loop, name="medallion-follow-gold", daemon=True)

    def close(self) -> None:
        self.stop_gold.set()
        self.silver_moved.set()
        if self.gold_thread.is_alive():
            self.gold_thread.join(120)
        self.silver.close()
        self.gold.close()

    def riding_out(self, action: Callable[[], T]) -> T | None:
        """action(), again after each lost connection (None when a stop came meanwhile), and
        again after a concurrency failure of a step's transaction (rolled back whole), a few times."""
        conflicts = 0
        while True:
            try:
                done = action()
                self.outage.over()
                return done
            except CONFLICTS as exc:
                conflicts += 1
                if conflicts > 3:
                    raise
                self.notify(f"silver and gold: {str(exc).strip().splitlines()[0]} (a concurrent transaction); "
                            "trying the round again")
                time.sleep(0.5 * conflicts)
            except Exception as exc:  # noqa: BLE001 - only a lost connection is retried
                if (lost := connection_lost(exc)) is None:
                    raise
                self.outage.wait(lost)
                if self.stop():
                    return None

    def build(self, reason: str) -> None:
        with self.paused:
            self.riding_out(lambda: self._build(reason))
            self.silver_moved.set()  # gold reads the steps the build stored

    def _build(self, reason: str) -> None:
        self._dbt_build(reason)
        self.report.build_reasons.append(reason)
        for applier in (self.silver, self.gold):
            if (missing := applier.reload(self.outage.epoch)) is not None:
                self._dbt_build(missing)  # an incremental build stores every step
                if (still := applier.reload(self.outage.epoch)) is not None:
                    raise MedallionError(f"run --follow cannot go on: {still}; check 'medallion build' first")

    def _dbt_build(self, reason: str) -> None:
        """One dbt build; Stopped when a stop interrupted it, ConnectionLost when a restart cut it."""
        started = self._server_started()
        self.outage.over()  # the warehouse answers again: the build runs from here
        self.notify(f"dbt build: {reason}")
        self.stop.building = self.first_build
        try:
            if self.stop():
                raise KeyboardInterrupt
            pipeline.build(self.ctx, tests=False, stored=False)
        except (KeyboardInterrupt, BuildInterrupted, BuildFailed) as exc:  # dbt hands a Ctrl-C back as BuildInterrupted
            if self.stop():
                raise Stopped(f"dbt build ({reason})") from None
            if isinstance(exc, BuildFailed) and (lost := self._cut_by_outage(exc, started)) is not None:
                raise lost from None
            raise
        finally:
            self.stop.building = False
        self.report.builds += 1

    def _server_started(self) -> object:
        conn = self.silver.connected(self.outage.epoch)
        started = conn.execute("select pg_postmaster_start_time()").fetchone()[0]
        conn.commit()
        return started

    def _cut_by_outage(self, exc: BuildFailed, started: object) -> ConnectionLost | None:
        """The build failed because the warehouse went away (it restarted since, or dbt's message
        says a connection broke), not because of a model."""
        message = str(exc).split("; details in ")[0]
        if any(sign in message for sign in LOST_IN_DBT):
            return ConnectionLost(f"lost a connection during a dbt build ({message})")
        try:
            with connect(self.ctx.endpoints.warehouse, "warehouse") as conn:
                now = conn.execute("select pg_postmaster_start_time()").fetchone()[0]
        except ConnectionFailed as failed:
            return ConnectionLost(str(failed))
        return ConnectionLost(f"the warehouse restarted during a dbt build ({message})") if now != started else None

    def start(self) -> None:
        """The first build, which a stop interrupts (it may be long: a whole warehouse); a later
        build (a fallback, incremental) finishes, and the follow then stops as after a batch."""
        self.first_build = True
        try:
            self.build("the first build of this follow")
        finally:
            self.first_build = False
        self.gold_thread.start()

    def round(self) -> None:
        """Silver once; a build when silver or gold asked for one; gold woken when silver moved."""
        if self.gold_failure:
            raise self.gold_failure[0]
        applied, needs_build = self.silver.apply(self.outage.epoch)
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
            applied, needs_build = self.gold.apply(self.outage.epoch)
            self.report.applied += applied
        if needs_build:
            self.build(needs_build)

    def _gold_round(self) -> None:
        with self.paused:
            applied, needs_build = self.gold.apply(self.outage.epoch)
            self.report.applied += applied
        if needs_build:
            self.gold_needs.append(needs_build)  # the main thread runs the build

    def _gold_loop(self) -> None:
        try:
            while not self.stop_gold.is_set():
                self.silver_moved.wait(POLL_SECONDS)
                if self.stop_gold.is_set():
                    return
                if not self.silver_moved.is_set():
                    continue
                self.silver_moved.clear()
                self.riding_out(self._gold_round)
        except BaseException as exc:  # noqa: BLE001 - raised in the main thread at its next round
            self.gold_failure.append(exc)


def follow(settings: Settings | Context, notify: Callable[[str], None] = lambda _: None,
           on_round: Callable[[FollowReport], None] = lambda _: None, batch_size: int | None = None,
           give_up_after: float = 300.0) -> FollowReport:
    """Ingest and apply until SIGINT/SIGTERM; see the module's docstring."""
    ctx = Context.of(settings)
    stop = Stop()
    report = FollowReport()
    with stop.installed():
        in_use = locks.InUse(ctx)
        try:
            _follow(ctx, report, notify, on_round, batch_size, give_up_after, stop, in_use)
        except Stopped as stopped:
            notify(f"stopping: the {stopped} was interrupted; the models it committed are kept, and the next "
                   "'medallion run --follow' or 'medallion build' continues from there")
        except KeyboardInterrupt:
            if stop.signals != 1:
                raise  # a second Ctrl-C: now
            notify("stopping: interrupted as a dbt build ended; the next 'medallion run --follow' or "
                   "'medallion build' continues from there")
        finally:
            in_use.close()
    return report


def _follow(ctx: Context, report: FollowReport, notify: Callable[[str], None],
            on_round: Callable[[FollowReport], None], batch_size: int | None, give_up_after: float, stop: Stop,
            in_use: locks.InUse) -> None:
    outage = Outage(notify, give_up_after, stop)
    follower = Follower(ctx, report, notify, on_round, outage, stop)
    follower.riding_out(in_use.ensure)  # no reset while this runs, from the start
    held_since = outage.epoch
    # the snapshot and what is pending, then the first build
    first = follower.riding_out(lambda: pipeline.ingest(ctx, notify=notify))
    report.changes += first.changes if first is not None else 0
    halt = threading.Event()
    wake = threading.Event()
    failure: list[BaseException] = []

    def on_batch(result: object, _lag: object) -> None:
        report.changes += getattr(result, "changes", 0)
        wake.set()

    def ingest() -> None:
        try:
            kwargs = {"batch_size": batch_size} if batch_size else {}
            pipeline.ingest(ctx, follow=True, notify=notify, on_batch=on_batch, should_stop=halt.is_set,
                            give_up_after=give_up_after, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            failure.append(exc)
        finally:
            wake.set()

    ingester = threading.Thread(target=ingest, name="medallion-follow-ingest", daemon=True)
    try:
        if stop():
            return
        follower.start()
        ingester.start()
        notify("following the source; Ctrl-C stops after the current batch")
        watch = PublicationWatch(ctx, notify)  # a selected table the publication does not send
        while not stop() and ingester.is_alive():
            wake.wait(POLL_SECONDS)
            wake.clear()
            follower.riding_out(follower.round)
            if held_since != outage.epoch and outage.since is None:  # taken again after an outage
                follower.riding_out(in_use.ensure)
                held_since = outage.epoch
            watch.poll()
        halt.set()
        ingester.join()
        if failure:
            raise failure[0]
        follower.riding_out(follower.finish)  # what the last batch brought, through gold
    finally:
        halt.set()
        if ingester.is_alive():
            ingester.join(60)
        follower.close()
