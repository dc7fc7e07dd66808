"""Re-sync after a lost slot: a new consistent snapshot into the existing bronze, as a new epoch.

A slot that was dropped, or invalidated because the source removed WAL it still needed
(max_slot_wal_keep_size), cannot say what happened since bronze's last position: those
changes are gone. `medallion reset` would throw away all history. A re-sync keeps it: it creates
the slot again with an exported snapshot, and writes into each captured table's bronze, at the
snapshot's consistent point L, one E row (the epoch) and one R row per row the table holds then.
Silver reads an epoch as an observation of the whole table at the re-sync time: a row that
differs from its current version gets a new version then, one that is gone ends then, one that
is the same continues. The gap is recorded in bronze.capture_gap. The stream resumes from L.

A re-sync records its intent in bronze (ingest_state.resync_reason) before it drops the old slot
or creates the new one. A re-sync killed after that (SIGKILL, a broken pipe) may leave a new,
healthy-looking slot whose start is past every change of the gap: resuming from it would lose
them silently. While the intent is recorded, `ingest`/`run` finish the re-sync instead (and
`status` says so): the slot is dropped and created again, and the epoch written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from medallion.bronze import slot as slots
from medallion.bronze import snapshot, store
from medallion.bronze.decoders import int_to_lsn, lsn_to_int
from medallion.bronze.destination import Destination
from medallion.config import ProjectConfig
from medallion.db import connect, sql_text
from medallion.errors import BronzeMismatch
from medallion.selection import bronze_names, require_some, resolve
from medallion.source.catalog import read_tables


@dataclass(frozen=True)
class SlotHealth:
    state: str  # healthy, dropped, invalidated, at risk
    detail: str

    @property
    def lost(self) -> bool:
        return self.state in ("dropped", "invalidated")


def slot_health(src: psycopg.Connection, slot: str, last_commit_lsn: str | None) -> SlotHealth:
    """What became of the slot bronze reads from, in words that name the remedy."""
    row = slots.status(src, slot)
    behind = f" while bronze stops at LSN {last_commit_lsn}" if last_commit_lsn else ""
    if row is None:
        return SlotHealth("dropped", f"slot {slot} is gone from the source (dropped){behind}: the changes since "
                                     "cannot be read; run 'medallion resync' to take a new snapshot into the same "
                                     "bronze (history up to the gap is kept)")
    if row["wal_status"] == "lost":
        return SlotHealth("invalidated", f"slot {slot} was invalidated: the source removed WAL it still needed "
                                         f"(max_slot_wal_keep_size){behind}; run 'medallion resync' to take a new "
                                         "snapshot into the same bronze (history up to the gap is kept)")
    if row["wal_status"] == "unreserved":
        return SlotHealth("at risk", f"slot {slot} is past max_slot_wal_keep_size: the source may remove WAL it "
                                     "still needs at the next checkpoint; run 'medallion ingest' now")
    return SlotHealth("healthy", f"slot {slot}: lag {row['lag_bytes']:,} bytes, WAL {row['wal_status']}")


def pending(wh: psycopg.Connection, slot: str) -> str | None:
    """Why an unfinished re-sync began (dropped, invalidated), or None when none is under way."""
    has_column = wh.execute("select exists (select from pg_attribute where attrelid = "
                            "to_regclass('bronze.ingest_state') and attname = 'resync_reason')").fetchone()[0]
    row = wh.execute("select resync_reason from bronze.ingest_state where slot_name = %s",
                     [slot]).fetchone() if has_column else None
    return row[0] if row else None


def interrupted_detail(slot: str, reason: str) -> str:
    """The words for an unfinished re-sync (status and the start-up check share them)."""
    return (f"a re-sync of slot {slot} (after it was {reason}) was interrupted before its snapshot was written: "
            f"the slot cannot be resumed without losing the gap's changes; run 'medallion resync' to finish it")


def _drop_when_idle(src: psycopg.Connection, slot: str, wait: float = 30.0) -> None:
    """Drop the slot an interrupted re-sync left (its exported snapshot died with it); a killed
    client's walsender may hold it for a moment."""
    deadline = time.monotonic() + wait
    while (row := slots.slot_row(src, slot)) is not None:
        if not row["active_pid"]:
            slots.drop(src, slot)
            return
        if time.monotonic() >= deadline:
            raise BronzeMismatch(f"slot {slot} is in use by source backend pid {row['active_pid']}: stop that "
                                 "process, then run 'medallion resync' again")
        time.sleep(0.25)


def resync(source_dsn: str, src: psycopg.Connection, wh: psycopg.Connection, destination: Destination, slot: str,
           config: ProjectConfig, plugin: str, identity: dict, progress: Callable[[str, int], None] = lambda *_: None) -> int:
    """Take the new epoch (see the module docstring); returns the number of R rows written."""
    state = store.read_state(wh, slot)
    wh.commit()
    if state is None:
        raise BronzeMismatch(f"bronze has no state for slot {slot}: nothing to re-sync; run 'medallion ingest'")
    reason = pending(wh, slot)
    if reason is None:
        health = slot_health(src, slot, state.last_commit_lsn)
        if not health.lost:
            raise BronzeMismatch(f"slot {slot} is {health.state}: nothing to re-sync ('medallion ingest' reads on)")
        reason = health.state
        wh.execute(sql_text("medallion.bronze", "resync_begin.sql"), {"slot": slot, "reason": reason})
    wh.commit()  # the intent is durable before the slot is touched
    _drop_when_idle(src, slot)  # invalidated, or left by an interrupted re-sync
    snapshot_ts = identity["now"]
    recorded = bronze_names(store.recorded_tables(wh))
    with slots.ExportedSnapshotSlot(source_dsn, slot, plugin) as created:
        lsn = lsn_to_int(created.consistent_lsn)
        if lsn <= lsn_to_int(state.last_commit_lsn):
            raise BronzeMismatch(
                f"the source's WAL position {created.consistent_lsn} is not past bronze's {state.last_commit_lsn} "
                "(restored from a backup?): bronze cannot continue it; run 'medallion reset'")
        with connect(source_dsn, "source") as snap:
            snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snap.read_only = True
            snap.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(created.snapshot_name)))
            selection = resolve(config, read_tables(snap), recorded)
            require_some(selection)
            total = 0
            loaded = wh.execute("select now()").fetchone()[0]  # the epoch's rows: known from one time
            for captured in selection.captured:
                store.create_bronze_table(wh, captured.bronze)
                store.allow_epochs(wh, captured.bronze)
                store.record_table(wh, captured.bronze, captured.table, lsn, snapshot_ts, 0, "observed")
                wh.execute(sql.SQL(sql_text("medallion.bronze", "epoch_insert.sql")).format(
                    table=sql.Identifier(store.BRONZE_SCHEMA, captured.bronze)),
                    {"lsn": lsn, "source_table": captured.table.qualified, "ts": snapshot_ts})
                rows = snapshot.copy_table(snap, destination, captured, lsn, 1, snapshot_ts, plugin, loaded)
                total += rows
                progress(captured.name, rows)
        wh.execute(sql_text("medallion.bronze", "gap_insert.sql"), {
            "slot": slot, "reason": reason, "last_lsn": state.last_commit_lsn, "last_ts": state.last_commit_ts,
            "resync_lsn": int_to_lsn(lsn), "resync_ts": snapshot_ts})
        wh.execute(sql_text("medallion.bronze", "state_advance.sql"), {
            "slot": slot, "lsn": int_to_lsn(lsn), "ts": snapshot_ts, "changes": total})
        wh.execute(sql_text("medallion.bronze", "log_insert.sql"), {
            "slot": slot, "kind": "snapshot", "first_lsn": int_to_lsn(lsn), "last_lsn": int_to_lsn(lsn),
            "transactions": 1, "changes": total, "started_at": datetime.now(snapshot_ts.tzinfo)})
        wh.execute(sql_text("medallion.bronze", "resync_end.sql"), {"slot": slot})
        wh.commit()
    return total
