"""Is capture safe right now? The findings behind `medallion status` and its exit code.

Capture is at risk when bronze can no longer read every change, or soon will not: the slot is
gone or invalidated, a re-sync was interrupted (the slot may start past the gap), the slot lags
or holds more of the source's WAL than medallion.toml's [status] allows (a stopped pipeline
fills the source's disk: max_slot_wal_keep_size is -1 by default), or a table the selection
matches is not in the publication (its rows never arrive). Each finding is one line naming the
object and the command that fixes it. Structured, so that `status --json` or metrics can reuse
it; the CLI maps it to exit codes (0 healthy, 1 at risk, 2 cannot tell).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg

from medallion.bronze import publication, resync, snapshot_chunks, store
from medallion.bronze import slot as slots
from medallion.config import ProjectConfig
from medallion.context import Context
from medallion.db import connect
from medallion.sqlfiles import sql_text
from medallion.errors import MedallionError
from medallion.selection import read_plan
from medallion.settings import Settings

HEALTHY, AT_RISK, UNKNOWN = 0, 1, 2  # `medallion status` exit codes
CHECKS = ("slot", "resync", "snapshot", "lag", "retained_wal", "publication")  # Finding.check: what `status` looks at


@dataclass(frozen=True)
class Finding:
    """One reason capture is at risk: a short title (what), and the line that names the fix."""

    check: str  # one of CHECKS
    title: str
    message: str


@dataclass
class CaptureHealth:
    findings: list[Finding] = field(default_factory=list)
    lag_bytes: int | None = None  # source WAL since the slot's confirmed position
    retained_wal_bytes: int | None = None  # source WAL kept for the slot (from restart_lsn)
    shared_cluster: bool = False  # source and warehouse on one cluster: its WAL counts both

    @property
    def at_risk(self) -> bool:
        return bool(self.findings)

    @property
    def exit_code(self) -> int:
        return AT_RISK if self.findings else HEALTHY


def evaluate(src: psycopg.Connection, wh: psycopg.Connection, slot: str, config: ProjectConfig,
             state: store.State | None, plugin: str) -> CaptureHealth:
    """The findings for a pipeline whose bronze state is `state` (None before the first ingest:
    nothing is captured, so nothing is at risk)."""
    health = CaptureHealth()
    if state is None:
        return health
    row = slots.status(src, slot)
    if row is not None:
        health.lag_bytes = _int(row["lag_bytes"])
        health.retained_wal_bytes = _int(row["retained_wal_bytes"])
    health.shared_cluster = _same_cluster(wh, state)
    if snapshot_chunks.is_open(state):
        holder = src.execute(sql_text("medallion.bronze", "lock_holder.sql"),
                             {"key": slots.IngesterLock(src, slot).key}).fetchone()
        detail = snapshot_chunks.unfinished_detail(wh, slot)
        wh.commit()
        if holder is not None:
            detail = detail.replace("is unfinished", f"is under way (source backend pid {holder[0]})")
        health.findings.append(Finding("snapshot", "initial snapshot unfinished", detail))
    interrupted = resync.pending(wh, slot)
    wh.commit()
    if interrupted is not None:
        holder = src.execute(sql_text("medallion.bronze", "lock_holder.sql"),
                             {"key": slots.IngesterLock(src, slot).key}).fetchone()
        if holder is not None:  # running now, not interrupted: still not safe until its epoch is written
            health.findings.append(Finding(
                "resync", "re-sync under way", f"a re-sync of slot {slot} (after it was {interrupted}) is running "
                f"(source backend pid {holder[0]}): capture resumes once its snapshot is written"))
        else:
            health.findings.append(Finding("resync", "re-sync interrupted",
                                           resync.interrupted_detail(slot, interrupted)))
    else:
        slot_health = resync.slot_health(src, slot, state.last_commit_lsn)
        if slot_health.state != "healthy":
            health.findings.append(Finding("slot", f"slot {slot_health.state}", slot_health.detail))
    limits = config.status
    if health.lag_bytes is not None and health.lag_bytes > limits.max_lag_bytes:
        health.findings.append(Finding(
            "lag", "lag", f"slot {slot} lags {health.lag_bytes:,} bytes of source WAL, past [status] max_lag_bytes "
                          f"({limits.max_lag_bytes:,}): run 'medallion ingest' (or keep 'medallion run --follow' "
                          "running)"))
    if health.retained_wal_bytes is not None and health.retained_wal_bytes > limits.max_retained_wal_bytes:
        health.findings.append(Finding(
            "retained_wal", "retained WAL",
            f"the source keeps {health.retained_wal_bytes:,} bytes of WAL for slot {slot}, past [status] "
            f"max_retained_wal_bytes ({limits.max_retained_wal_bytes:,}): its disk fills while capture stands "
            "still; run 'medallion ingest' so the slot moves on (or 'medallion reset' for a pipeline given up)"))
    if plugin == "pgoutput":
        line = unpublished_line(src, wh, slot, config)
        if line is not None:
            health.findings.append(Finding("publication", "unpublished", line))
    return health


def unpublished_line(src: psycopg.Connection, wh: psycopg.Connection, slot: str, config: ProjectConfig) -> str | None:
    """The line naming the selected tables the publication does not send, or None when it sends
    them all (shared by `status` and `run --follow`'s periodic check)."""
    missing = publication.unpublished(src, slot, read_plan(config, src, wh).selection)
    if missing is None:
        return publication.unpublished_message(slot, None)
    if not missing:
        return None
    return (f"publication {publication.publication_name(slot)} does not send {', '.join(missing)}, which the "
            "selection matches: its rows are not captured; run 'medallion prepare-source'")


def freshness_seconds(horizon: datetime | None) -> float | None:
    """How far silver is behind the present: seconds since the source time it is complete to
    (silver.horizon()); None before the first build. `status --json` and the metrics say the same."""
    if horizon is None:
        return None
    return max((datetime.now(timezone.utc) - horizon).total_seconds(), 0.0)


def _int(value: object) -> int | None:
    return int(value) if value is not None else None


def _same_cluster(wh: psycopg.Connection, state: store.State) -> bool:
    """Whether the warehouse is the source's own cluster (the embedded one): then the slot's lag
    and retained WAL count the warehouse's writes too (a build's WAL is the source's WAL)."""
    try:
        system_id = wh.execute("select system_identifier::text from pg_control_system()").fetchone()[0]
    except psycopg.Error:  # not allowed to ask: assume separate servers
        wh.rollback()
        return False
    wh.commit()
    return system_id == state.source_system_id


class PublicationWatch:
    """`run --follow`'s periodic look for selected tables the publication does not send.

    A table created while following, on a source whose publication lists tables (no superuser),
    gets no rows until `prepare-source` adds it: said when it appears and every REMIND_SECONDS
    while it lasts, never quietly. Connection trouble is the ingester's to report: a failed look
    is skipped."""

    CHECK_SECONDS = 5.0
    REMIND_SECONDS = 300.0

    def __init__(self, ctx: Settings | Context, notify: Callable[[str], None]) -> None:
        self.ctx = Context.of(ctx)
        self.notify = notify
        self.next_check = 0.0
        self.last: tuple[str | None, float] = (None, 0.0)  # the line last said, and when

    def poll(self) -> None:
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + self.CHECK_SECONDS
        try:
            line = self._look()
        except (psycopg.Error, MedallionError):
            return
        said, at = self.last
        if line is not None and (line != said or now - at >= self.REMIND_SECONDS):
            self.notify(line)
            self.last = (line, now)
        elif line is None:
            self.last = (None, 0.0)

    def _look(self) -> str | None:
        ends = self.ctx.endpoints
        with connect(ends.source, "source", autocommit=True) as src, connect(ends.warehouse, "warehouse") as wh:
            state = store.read_state(wh, self.ctx.slot)
            if state is None or state.plugin != "pgoutput":
                return None
            return unpublished_line(src, wh, self.ctx.slot, self.ctx.config)
