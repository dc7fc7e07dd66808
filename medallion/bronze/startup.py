"""Before an ingest run streams: bronze and the slot belong together, or the run is refused.

A first run takes the initial snapshot; a resumed one checks that the slot is bronze's (same
source database, same plugin, not lost), that the selection still fits what bronze holds, and
records schemas that changed unseen while nothing streamed. An interrupted re-sync is finished
first. Each refusal is one line naming the fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import psycopg

from medallion.bronze import checks, publication, resync, snapshot, snapshot_chunks, store
from medallion.bronze import slot as slots
from medallion.bronze.decoders import lsn_to_int
from medallion.bronze.destination import Destination
from medallion.config import ProjectConfig
from medallion.db import Endpoints, sql_text
from medallion.errors import BronzeMismatch, SlotBusy, SlotLost
from medallion.patterns import display
from medallion.selection import CapturePlan, Selection, excluded_note, read_plan, selects

LAST_ORDINAL = 2**31 - 1  # a position after every change of a transaction


@dataclass
class Startup:
    """The start-up of one ingest run, on its connections (medallion.bronze.ingest.Ingester)."""

    endpoints: Endpoints
    src: psycopg.Connection
    wh: psycopg.Connection
    destination: Destination
    slot: str
    config: ProjectConfig
    asked_plugin: str | None  # MEDALLION_PLUGIN / [capture] plugin, if any
    plugin: str  # what the slot is read with: the asked one, or the existing slot's after start()
    wait: float
    notify: Callable[[str], None]
    say_once: Callable[[str], None]

    def plan(self) -> CapturePlan:
        """The capture plan now: the source's catalog, bronze's recorded names kept."""
        return read_plan(self.config, self.src, self.wh)

    def selection(self) -> Selection:
        return self.plan().selection

    def _identity(self) -> dict:
        store.ensure_schema(self.wh)
        return dict(zip(("system_id", "database", "database_oid", "now"),
                        self.src.execute(sql_text("medallion.bronze", "source_identity.sql")).fetchone()))

    def resync(self, progress: Callable[[str, int], None] = lambda *_: None) -> int:
        """After a lost slot: a new snapshot into the existing bronze as a new epoch (see
        medallion.bronze.resync). Returns the number of rows the epoch holds."""
        identity = self._identity()
        state = store.read_state(self.wh, self.slot)
        self.wh.commit()
        if state is not None and (state.source_system_id, state.source_database_oid) != \
                (identity["system_id"], identity["database_oid"]):
            raise BronzeMismatch(f"bronze was captured from another source database than {identity['database']}: "
                                 "a re-sync cannot continue it; run 'medallion reset'")
        plugin = state.plugin if state is not None else self.plugin
        if plugin == "pgoutput":
            publication.check(self.src, self.slot, self.selection())
        return resync.resync(self.endpoints.source, self.src, self.wh, self.destination, self.slot, self.config,
                             plugin, identity, progress)

    def start(self, progress: Callable[[str, int], None], ddl_trigger: bool) -> int:
        """Make sure bronze and the slot belong together; take the initial snapshot if needed.

        Returns the number of snapshot rows written now (0 when resuming)."""
        identity = self._identity()
        state = store.read_state(self.wh, self.slot)
        self.wh.commit()
        existing = slots.slot_row(self.src, self.slot)
        if state is not None:
            if (state.source_system_id, state.source_database_oid) != (identity["system_id"], identity["database_oid"]):
                raise BronzeMismatch(
                    f"bronze was captured from another source database than {identity['database']} "
                    "(it was recreated, or the DSN changed): run 'medallion reset' to start bronze over")
            if snapshot_chunks.is_open(state):  # an initial snapshot stopped part way: its rest goes online
                self.notify(snapshot_chunks.hand_over(self.wh, self.slot, self.selection()))
                state = store.read_state(self.wh, self.slot)
                self.wh.commit()
            interrupted = resync.pending(self.wh, self.slot)
            self.wh.commit()
            if interrupted is not None:  # the slot may start past the gap: never resume from it
                self.notify(f"finishing the re-sync of slot {self.slot} that was interrupted")
                rows = self.resync(progress)
                self.plugin = state.plugin
                return rows
            health = resync.slot_health(self.src, self.slot, state.last_commit_lsn)
            if health.lost:
                raise SlotLost(health.detail)
            if existing["database"] != identity["database"]:
                raise BronzeMismatch(
                    f"slot {self.slot} on the source belongs to database {existing['database']}: "
                    "choose another MEDALLION_SLOT")
            if self.asked_plugin and self.asked_plugin != existing["plugin"]:
                raise BronzeMismatch(
                    f"bronze is captured through slot {self.slot} with {existing['plugin']}, not {self.asked_plugin}: "
                    f"unset MEDALLION_PLUGIN / [capture] plugin to keep {existing['plugin']}, or run 'medallion reset' "
                    f"to start over with {self.asked_plugin}")
            self.plugin = existing["plugin"]
            self._check_resumed_selection(ddl_trigger)
            return 0
        self._check_one_capture()
        selection = self.selection()
        checks.check_tables(selection)
        if self.plugin == "pgoutput":
            publication.check(self.src, self.slot, selection)
        if existing is not None:
            if existing["database"] != identity["database"]:
                raise BronzeMismatch(
                    f"slot {self.slot} already exists for database {existing['database']}: "
                    "choose another MEDALLION_SLOT")
            # Left by an initial snapshot that did not commit: nothing of it reached bronze.
            self.notify(f"dropping slot {self.slot} left by an interrupted initial snapshot")
            self._wait_until_inactive()
            slots.drop(self.src, self.slot)
        rows, taken = snapshot.take(self.endpoints.source, self.wh, self.destination, self.slot, identity,
                                    self.config, self.plugin, progress, warehouse_dsn=self.endpoints.warehouse,
                                    notify=self.notify)
        for note in taken.notes:
            self.notify(note)
        return rows

    def _check_one_capture(self) -> None:
        """One bronze, one capture: a second slot (or source) appending a second snapshot to the same
        bronze tables would double every row. Refused, saying how to run a second pipeline."""
        other = self.wh.execute("select slot_name, source_database from bronze.ingest_state where slot_name <> %s "
                                "limit 1", [self.slot]).fetchone()
        has_rows = bool(store.recorded_tables(self.wh))
        self.wh.commit()
        if other is not None:
            raise BronzeMismatch(
                f"bronze in this warehouse is fed by slot {other[0]} (source database {other[1]}), not {self.slot}: "
                "a second pipeline needs its own warehouse database (another MEDALLION_WAREHOUSE_DSN); to move "
                f"this one to slot {self.slot}, run 'medallion reset' first")
        if has_rows:
            raise BronzeMismatch(
                "bronze in this warehouse holds tables but no ingest state: it was not written by this pipeline; "
                "point MEDALLION_WAREHOUSE_DSN at an empty database, or run 'medallion reset'")

    def _check_resumed_selection(self, ddl_trigger: bool) -> None:
        """Bronze's tables are still selected, and still capturable; say what the selection adds."""
        plan = self.plan()
        selection = plan.selection
        for note in selection.notes + checks.identity_problems(selection):
            self.say_once(note)
        if self.plugin == "pgoutput":
            publication.check(self.src, self.slot, selection)
        for table in plan.recorded.values():
            why = selects(self.config, table.schema, table.name)
            if why is not None:  # accepted, and said on every run: a table whose build fails can be left out
                self.notify(excluded_note(self.config, display(table.schema, table.name), why))
        if not ddl_trigger:
            self._observe_schemas(plan)

    def _observe_schemas(self, plan: CapturePlan) -> None:
        """Without the DDL trigger: a captured table whose catalog differs from bronze's record
        changed while nothing of it streamed by; its schema is recorded now, after everything
        bronze holds (the first moment bronze can know it)."""
        by_ident = {t.ident: t for t in plan.recorded.values()}
        state = store.read_state(self.wh, self.slot)
        observed = []
        for captured in plan.selection.captured:
            known = by_ident.get(captured.table.ident)
            if known is not None and (known.columns != captured.table.columns or known.key != captured.table.key):
                store.record_table(self.wh, known.bronze, captured.table, lsn_to_int(state.last_commit_lsn),
                                   datetime.now(timezone.utc), LAST_ORDINAL, "observed")
                observed.append(captured.name)
        self.wh.commit()
        if observed and not self.config.accept_no_ddl_trigger:
            self.notify(f"the schema of {', '.join(observed)} changed: recorded now, not at the ALTER's own time "
                        "(install the DDL trigger: 'medallion prepare-source' as a superuser; or, understood, "
                        "[capture] accept_no_ddl_trigger = true in medallion.toml stops this note)")

    def _wait_until_inactive(self) -> None:
        deadline = time.monotonic() + self.wait
        while (row := slots.slot_row(self.src, self.slot)) and row["active_pid"]:
            if time.monotonic() >= deadline:
                raise SlotBusy(f"slot {self.slot} is in use by source backend pid {row['active_pid']}: "
                               "stop that process first")
            time.sleep(0.25)
