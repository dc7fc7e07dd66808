"""Exactly-once delivery from the source's replication slot into bronze.

One batch: peek whole transactions (the slot does not move), drop those bronze already has
(commit position <= the recorded one), write the rest and the new position in ONE warehouse
transaction, commit, and only then advance the slot. A crash at any point either leaves the
batch wholly in bronze (the source hands it out again; it is skipped) or not at all (it is
written on restart). The primary key (commit_lsn, ordinal) turns any slip into a loud error.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import psycopg
from psycopg import sql

from medallion import naming
from medallion.bronze import checks, snapshot, store
from medallion.bronze import slot as slots
from medallion.bronze.decode import Transaction, int_to_lsn, lsn_to_int, transactions
from medallion.bronze.rows import bronze_row
from medallion.config import ProjectConfig
from medallion.db import Endpoints, connect, sql_text
from medallion.errors import BronzeMismatch, SelectionError, SlotBusy
from medallion.patterns import display
from medallion.selection import Selection, resolve, selects
from medallion.source.catalog import SourceTable, read_tables

DEFAULT_BATCH = 50_000  # rows the slot hands out per peek (whole transactions, so maybe more)
BRONZE_COLUMNS = "commit_lsn, ordinal, lsn, xid, op, full_row, old_row, source_table, commit_ts"


@dataclass
class BatchResult:
    transactions: int = 0
    changes: int = 0
    skipped_transactions: int = 0  # already in bronze (re-delivered after a crash)
    last_commit_lsn: str | None = None
    last_commit_ts: str | None = None
    seconds: float = 0.0


class Ingester:
    """Owns the source and warehouse connections of one ingest run. Use as a context manager."""

    def __init__(self, endpoints: Endpoints, slot: str, config: ProjectConfig, batch_size: int = DEFAULT_BATCH,
                 wait: float = 30.0, notify: Callable[[str], None] = lambda _: None) -> None:
        self.endpoints = endpoints
        self.slot = slots.validate_slot_name(slot)
        self.config = config
        self.batch_size = batch_size
        self.wait = wait
        self.notify = notify
        # (schema, table) as a change names it (a leaf partition, maybe) -> (its bronze table, its
        # qualified name), or None when it is not captured
        self._targets: dict[tuple[str, str], tuple[str, str] | None] = {}
        self._recorded: dict[tuple[str, str], str] = {}  # captured root -> bronze table
        self._new: dict[str, SourceTable] = {}  # bronze table -> a table first captured by this run
        self._left_out: dict[int, SourceTable] = {}  # oid -> a table seen and not captured, to record
        self._uncaptured: set[int] = set()
        self._catalog: dict[tuple[str, str], SourceTable] | None = None
        self._warned: set[tuple[str, str]] = set()

    def __enter__(self) -> "Ingester":
        self.src = connect(self.endpoints.source, "source", autocommit=True)
        self.wh = connect(self.endpoints.warehouse, "warehouse")
        self.lock = slots.IngesterLock(self.src, self.slot)
        try:
            checks.check_wal_level(self.src)
            self.lock.acquire(self.wait, self.notify)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for conn in (getattr(self, "wh", None), getattr(self, "src", None)):
            if conn is not None and not conn.closed:
                conn.close()  # closing the source session also releases the advisory lock

    # -- start: snapshot or resume -----------------------------------------------------------

    def start(self, progress: Callable[[str, int], None] = lambda *_: None) -> int:
        """Make sure bronze and the slot belong together; take the initial snapshot if needed.

        Returns the number of snapshot rows written now (0 when resuming)."""
        rows = self._start(progress)
        self._recorded_tables = store.recorded_tables(self.wh)
        self._recorded = {(t.schema, t.name): t.bronze for t in self._recorded_tables.values()}
        self._uncaptured = store.uncaptured_oids(self.wh)
        self.wh.commit()
        return rows

    def selection(self) -> Selection:
        """The selection against the source's catalog now, bronze's recorded names kept."""
        recorded = {(t.schema, t.name): t.bronze for t in store.recorded_tables(self.wh).values()}
        self.wh.commit()
        return resolve(self.config, read_tables(self.src), recorded)

    def _start(self, progress: Callable[[str, int], None]) -> int:
        store.ensure_schema(self.wh)
        identity = dict(zip(("system_id", "database", "database_oid", "now"),
                            self.src.execute(sql_text("medallion.bronze", "source_identity.sql")).fetchone()))
        state = store.read_state(self.wh, self.slot)
        self.wh.commit()
        existing = slots.slot_row(self.src, self.slot)
        if state is not None:
            if (state.source_system_id, state.source_database_oid) != (identity["system_id"], identity["database_oid"]):
                raise BronzeMismatch(
                    f"bronze was captured from another source database than {identity['database']} "
                    "(it was recreated, or the DSN changed): run 'medallion reset' to start bronze over")
            if existing is None:
                raise BronzeMismatch(
                    f"slot {self.slot} is gone from the source while bronze stops at LSN {state.last_commit_lsn}: "
                    "changes made since cannot be recovered; run 'medallion reset' to take a new snapshot")
            if existing["database"] != identity["database"] or existing["plugin"] != slots.PLUGIN:
                raise BronzeMismatch(
                    f"slot {self.slot} on the source belongs to database {existing['database']} with plugin "
                    f"{existing['plugin']}: choose another MEDALLION_SLOT")
            self._check_resumed_selection()
            return 0
        checks.check_tables(self.selection())
        if existing is not None:
            if existing["database"] != identity["database"]:
                raise BronzeMismatch(
                    f"slot {self.slot} already exists for database {existing['database']}: "
                    "choose another MEDALLION_SLOT")
            # Left by an initial snapshot that did not commit: nothing of it reached bronze.
            self.notify(f"dropping slot {self.slot} left by an interrupted initial snapshot")
            self._wait_until_inactive()
            slots.drop(self.src, self.slot)
        rows, selection = snapshot.take(self.endpoints.source, self.wh, self.slot, identity, self.config, progress)
        for note in selection.notes:
            self.notify(note)
        return rows

    def _check_resumed_selection(self) -> None:
        """Bronze's tables are still selected, and still capturable; say what the selection adds."""
        selection = self.selection()
        for note in selection.notes + checks.identity_problems(selection):
            self.notify(note)
        recorded = store.recorded_tables(self.wh)
        self.wh.commit()
        for table in recorded.values():
            why = selects(self.config, table.schema, table.name)
            if why is not None:
                raise SelectionError(
                    f"{display(table.schema, table.name)} is in bronze but {self.config.where} no longer selects it "
                    f"({why}): its history would stop silently; select it again, or run 'medallion reset' to start over")
        uncaptured = store.uncaptured_oids(self.wh)
        self.wh.commit()
        recorded_idents = {(t.schema, t.name) for t in recorded.values()}
        for captured in selection.captured:
            if captured.table.ident not in recorded_idents and captured.table.oid in uncaptured:
                self._warn_existing(captured.table)

    def _warn_existing(self, table: SourceTable) -> None:
        if table.ident in self._warned:
            return
        self._warned.add(table.ident)
        self.notify(f"{display(*table.ident)} is selected now but existed, uncaptured, when capture started: its "
                    "rows are not in bronze and it is not captured; run 'medallion reset' to snapshot it with the rest")

    def _wait_until_inactive(self) -> None:
        deadline = time.monotonic() + self.wait
        while (row := slots.slot_row(self.src, self.slot)) and row["active_pid"]:
            if time.monotonic() >= deadline:
                raise SlotBusy(f"slot {self.slot} is in use by source backend pid {row['active_pid']}: "
                               "stop that process first")
            time.sleep(0.25)

    # -- stream --------------------------------------------------------------------------------

    def _catalog_has(self, ident: tuple[str, str]) -> dict[tuple[str, str], SourceTable]:
        """The source's tables, read again when ident is not among them (a table new since)."""
        if self._catalog is None or ident not in self._catalog:
            self._catalog = {t.ident: t for t in read_tables(self.src)}
        return self._catalog

    def _resolve(self, schema: str, table: str) -> tuple[str, str] | None:
        """The bronze table a change to schema.table lands in, or None when it is not captured.

        A leaf partition lands in its root's table. A selected table that bronze does not have
        yet was created after capture started: it is captured from its first change on."""
        ident = (schema, table)
        if ident in self._targets:
            return self._targets[ident]
        catalog = self._catalog_has(ident)
        source = catalog.get(ident)
        if source is None and ident in self._recorded:  # dropped since; bronze knows its name
            recorded = self._recorded_tables[self._recorded[ident]]
            self._targets[ident] = (recorded.bronze, recorded.qualified)
            return self._targets[ident]
        if source is None:
            if ident not in self._warned:
                self._warned.add(ident)
                self.notify(f"a change to {display(*ident)}, which is no longer in the source: it cannot be "
                            "traced to a captured table and is skipped (pgoutput names the root instead)")
            self._targets[ident] = None
            return None
        root = catalog.get(source.root, source)
        target = self._recorded.get(root.ident)
        if target is None and root.persistence == "p" and selects(self.config, *root.ident) is None:
            if root.oid in self._uncaptured:
                self._warn_existing(root)
            else:
                target = naming.bronze_table(*root.ident)
                if target in set(self._recorded.values()):
                    target = naming.fit(f"{target}_{naming.short_hash(root.qualified)}")
                self._recorded[root.ident] = target
                self._new[target] = root
                self.notify(f"capturing {display(*root.ident)}, new in the source, into bronze.{target}")
        elif target is None:
            self._left_out[root.oid] = root
        if target is not None and source.replica_identity != "f":
            self.notify(f"{source.qualified} has no REPLICA IDENTITY FULL: its deletes carry only the key; "
                        "run 'medallion prepare-source'")
        self._targets[ident] = (target, source.qualified) if target is not None else None
        return self._targets[ident]

    def _peek(self) -> tuple[list[tuple[int, int, str]], str]:
        """Pending rows up to the current flush position, and that position."""
        deadline = time.monotonic() + self.wait
        while True:
            upto = self.src.execute("select pg_current_wal_flush_lsn()::text").fetchone()[0]
            try:
                rows = self.src.execute(sql_text("medallion.bronze", "peek_changes.sql"),
                                        {"slot": self.slot, "upto": upto,
                                         "max_changes": self.batch_size}).fetchall()
                return rows, upto
            except psycopg.errors.ObjectInUse as exc:
                # A crashed ingester's backend may still be decoding; it lets go shortly.
                if time.monotonic() >= deadline:
                    raise SlotBusy(f"slot {self.slot} stays in use ({exc}): stop the other consumer") from None
                time.sleep(0.25)

    def batch(self) -> BatchResult:
        """Move one batch of whole transactions from the slot into bronze, exactly once."""
        began = time.perf_counter()
        rows, upto = self._peek()
        txns = list(transactions(rows, self._resolve))
        result = BatchResult()
        # Below the limit the peek decoded everything up to `upto`: the slot may move there even
        # when nothing was captured (other databases' WAL, e.g. the warehouse's own writes,
        # would otherwise stay pinned). At the limit, only up to the last whole transaction.
        complete = len(rows) < self.batch_size
        if not txns:
            if complete:
                slots.advance_if_behind(self.src, self.slot, upto)
            return result
        with self.wh.transaction():
            state = store.read_state(self.wh, self.slot, lock=True)
            assert state is not None, "start() records the state before any batch"
            done = lsn_to_int(state.last_commit_lsn)
            fresh = [t for t in txns if t.commit_lsn > done]
            result.skipped_transactions = len(txns) - len(fresh)
            if fresh:
                result.changes = self._write(fresh)
                result.transactions = len(fresh)
                result.last_commit_lsn = int_to_lsn(fresh[-1].commit_lsn)
                result.last_commit_ts = fresh[-1].commit_ts
                self.wh.execute(sql_text("medallion.bronze", "state_advance.sql"), {
                    "slot": self.slot, "lsn": result.last_commit_lsn, "ts": fresh[-1].commit_ts,
                    "changes": result.changes})
                self.wh.execute(sql_text("medallion.bronze", "log_insert.sql"), {
                    "slot": self.slot, "kind": "stream", "first_lsn": int_to_lsn(fresh[0].commit_lsn),
                    "last_lsn": result.last_commit_lsn, "transactions": len(fresh),
                    "changes": result.changes, "started_at": datetime.now(timezone.utc)})
        # Bronze has committed: the source may now forget these transactions.
        self._left_out.clear()
        for target in {c.target for t in txns for c in t.changes}:
            self._new.pop(target, None)
        slots.advance_if_behind(self.src, self.slot, upto if complete else int_to_lsn(txns[-1].commit_lsn))
        result.seconds = time.perf_counter() - began
        return result

    def _write(self, txns: list[Transaction]) -> int:
        """COPY the transactions' changes into their bronze tables, in commit order.

        A table new to bronze gets its change table and its schema record in this same
        transaction, positioned at the first transaction that changed it."""
        by_target: dict[str, list[tuple]] = {}
        for txn in txns:
            for change in txn.changes:
                if change.target in self._new and change.target not in by_target:
                    # idempotent: a run that crashed after committing it left the same record
                    store.create_bronze_table(self.wh, change.target)
                    store.record_table(self.wh, change.target, self._new[change.target], txn.commit_lsn,
                                       txn.commit_ts)
                full_row, old_row = bronze_row(change.data, change.op)
                by_target.setdefault(change.target, []).append(
                    (txn.commit_lsn, change.ordinal, change.lsn, txn.xid, change.op, full_row, old_row,
                     change.source_table, txn.commit_ts))
        for table in self._left_out.values():
            store.record_uncaptured(self.wh, table, txns[-1].commit_lsn)
        for target, rows in sorted(by_target.items()):
            copy = sql.SQL("copy {} ({}) from stdin").format(
                sql.Identifier(store.BRONZE_SCHEMA, target), sql.SQL(BRONZE_COLUMNS))
            with self.wh.cursor().copy(copy) as writer:
                for row in rows:
                    writer.write_row(row)
        return sum(len(rows) for rows in by_target.values())

    def drain(self, on_batch: Callable[[BatchResult], None] = lambda _: None) -> list[BatchResult]:
        """Ingest until the slot has nothing pending."""
        results = []
        while True:
            result = self.batch()
            if result.transactions == 0 and result.skipped_transactions == 0:
                return results
            results.append(result)
            on_batch(result)

    def follow(self, should_stop: Callable[[], bool], on_batch: Callable[[BatchResult], None],
               poll: float = 0.2) -> None:
        """Ingest in bounded batches until should_stop() says so (checked between batches)."""
        while not should_stop():
            result = self.batch()
            on_batch(result)
            if result.transactions == 0 and result.skipped_transactions == 0:
                end = time.monotonic() + poll
                while time.monotonic() < end and not should_stop():
                    time.sleep(0.05)

    def lag_bytes(self) -> int | None:
        row = slots.status(self.src, self.slot)
        return int(row["lag_bytes"]) if row and row["lag_bytes"] is not None else None


@contextmanager
def stop_on_interrupt() -> Iterator[Callable[[], bool]]:
    """First Ctrl-C (or SIGTERM) asks to stop after the current batch; a second one stops now."""
    requested = {"stop": False}
    previous = {}

    def handler(signum: int, frame: object) -> None:
        if requested["stop"]:
            raise KeyboardInterrupt
        requested["stop"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield lambda: requested["stop"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
