"""Bronze in PostgreSQL: the first destination (medallion.bronze.destination).

Each bronze table is append-only, keyed (commit_lsn, ordinal): a slip that would write a change
twice is a loud error, never a duplicate. A batch's changes, the tables new to bronze (their
change table and schema record) and the new position are ONE warehouse transaction. Spilled
changes wait in local files (medallion.bronze.spill) and are COPYed into their bronze tables,
once, by the batch that holds their transaction's commit; with pgoutput they are COPYed while
the transaction streams, in a warehouse transaction that batch commits if the commit position
guessed for them was right (medallion.bronze.early).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg
from psycopg import sql

from medallion.bronze import online_snapshot, store, unchanged
from medallion.bronze.decoders import int_to_lsn, lsn_to_int
from medallion.bronze.destination import SNAPSHOT_COLUMNS, Batch, BatchResult, CapturedRow, Transaction
from medallion.bronze.spill import COMMIT_COLUMNS, LINE_COLUMNS, Spills, commit_suffix, copy_block
from medallion.db import sql_text

_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, LINE_COLUMNS + COMMIT_COLUMNS))


@dataclass
class Early:
    """A large transaction's rows COPYed into bronze under a guessed commit_lsn, not committed."""

    xid: int | None
    commit_lsn: int  # guessed (medallion.bronze.early)
    commit_ts: object
    done: int  # bronze's position when it began
    targets: set[str] = field(default_factory=set)  # bronze tables written early
    left_out: set[str] = field(default_factory=set)  # new to bronze: written by the batch


class PostgresDestination:
    """Bronze's tables in the warehouse database, written through one connection."""

    def __init__(self, wh: psycopg.Connection, slot: str) -> None:
        self.wh = wh
        self.slot = slot
        self.spills = Spills()
        self.early_writes = self.wrong_guesses = 0  # large transactions written early; guesses missed
        self.early: Early | None = None  # a large transaction being written under a guessed commit_lsn

    def snapshot_rows(self, bronze: str, blocks: Iterable[bytes]) -> int:
        copy_in = sql.SQL("copy {} ({}) from stdin").format(
            sql.Identifier(store.BRONZE_SCHEMA, bronze), sql.SQL(", ").join(map(sql.Identifier, SNAPSHOT_COLUMNS)))
        with self.wh.cursor() as cur:
            with cur.copy(copy_in) as inp:
                for block in blocks:
                    inp.write(block)
            return cur.rowcount

    def discard_spill(self) -> None:
        """Forget spilled transactions: this run's files, and rows an older version of the
        ingester left in bronze.ingest_spill (the server sends those transactions again)."""
        self.spills.clear()
        self.wh.execute("delete from bronze.ingest_spill where slot_name = %s", [self.slot])
        self.wh.commit()

    def spill(self, xid: int | None, rows: dict[str, list[CapturedRow]],
              early: tuple[int, object] | None = None) -> None:
        """Park an open transaction's changes in local files (medallion.bronze.spill); with early,
        COPY them into their bronze tables too, in a warehouse transaction left open until the
        batch holding the commit checks the guessed commit_lsn (medallion.bronze.early)."""
        if early is not None and self.early is None:
            state = store.read_state(self.wh, self.slot, lock=True)  # opens the warehouse transaction
            assert state is not None, "start() records the state before any batch"
            self.early = Early(xid, *early, done=lsn_to_int(state.last_commit_lsn))
        for target, target_rows in rows.items():
            if not target_rows:
                continue
            if early is None or not self._writes_early(xid, target):
                self.spills.add(xid, target, target_rows)
                continue
            suffix = commit_suffix(*early)
            copy = sql.SQL("copy {} ({}) from stdin").format(sql.Identifier(store.BRONZE_SCHEMA, target), _COLUMNS)
            with self.wh.cursor().copy(copy) as out:
                self.spills.add(xid, target, target_rows, lambda data: out.write(data.replace(b"\n", suffix)))

    def _writes_early(self, xid: int | None, target: str) -> bool:
        """Whether this spill of target is COPYed into bronze now, as its earlier ones were."""
        early = self.early
        if early is None or early.xid != xid or early.commit_lsn <= early.done:
            return False  # already in bronze (sent again after a restart): the batch skips it
        if target not in early.targets and target not in early.left_out:
            missing = self.wh.execute("select to_regclass(format('%%I.%%I', %s::text, %s::text)) is null",
                                      [store.BRONZE_SCHEMA, target]).fetchone()[0]
            # a table new to bronze is created and written by the batch that commits it
            (early.left_out if missing else early.targets).add(target)
        return target in early.targets

    def caught_up(self, at: datetime) -> None:
        with self.wh.transaction():
            self.wh.execute(sql_text("medallion.bronze", "state_caught_up.sql"), {"at": at, "slot": self.slot})

    def spilled_version(self, xid: int | None, bronze: str, key: tuple[str, ...],
                        wanted: tuple[str | None, ...]) -> tuple[bool, dict | None]:
        spilled = self.spills.get(xid, bronze)
        return spilled.find(key, wanted) if spilled is not None else (False, None)

    def stored_version(self, bronze: str, key: tuple[str, ...], wanted: tuple[str | None, ...]) -> dict | None:
        # inside an early write the open warehouse transaction must stay open (its rows are the
        # spilled ones, which were looked in first)
        return unchanged.in_bronze(self.wh, bronze, key, wanted, commit=self.early is None)

    def write(self, batch: Batch) -> BatchResult:
        """Write committed transactions and the new position in one warehouse transaction."""
        began = time.perf_counter()
        result = BatchResult()
        txns = batch.transactions
        early = self._check_early(txns)
        with self.wh.transaction():
            state = store.read_state(self.wh, self.slot, lock=True)
            assert state is not None, "start() records the state before any batch"
            done = lsn_to_int(state.last_commit_lsn)
            fresh = [t for t in txns if t.commit_lsn > done]
            result.skipped_transactions = len(txns) - len(fresh)
            for table in batch.left_out.values():
                store.record_uncaptured(self.wh, table, txns[-1].commit_lsn)
            if fresh:
                result.changes, result.tables = self._copy(fresh, batch, early)
                for txn in fresh:
                    if txn.snapshot_marks:  # a chunk's progress, with its rows
                        online_snapshot.record(self.wh, self.slot, txn.commit_lsn, txn.commit_ts,
                                               txn.snapshot_marks)
                result.transactions = len(fresh)
                last = fresh[-1]
                result.last_commit_lsn = int_to_lsn(last.commit_lsn)
                result.last_commit_ts = str(last.commit_ts)
                self.wh.execute(sql_text("medallion.bronze", "state_advance.sql"), {
                    "slot": self.slot, "lsn": result.last_commit_lsn, "ts": last.commit_ts,
                    "changes": result.changes})
                self.wh.execute(sql_text("medallion.bronze", "log_insert.sql"), {
                    "slot": self.slot, "kind": "stream", "first_lsn": int_to_lsn(fresh[0].commit_lsn),
                    "last_lsn": result.last_commit_lsn, "transactions": len(fresh),
                    "changes": result.changes, "started_at": datetime.now(timezone.utc)})
        if early is not None:
            self.wh.commit()  # the block above was a savepoint inside the early write
        for txn in txns:
            if txn.spilled:
                self.spills.drop(txn.xid)
        result.seconds = time.perf_counter() - began
        return result

    def _check_early(self, txns: list[Transaction]) -> Early | None:
        """The early write, if these transactions hold its commit and the guess was right; else
        it is rolled back (the transaction is then written from its spill files)."""
        early, self.early = self.early, None
        if early is None:
            return None
        txn = next((t for t in txns if t.xid == early.xid and t.spilled), None)
        if txn is None or txn.commit_lsn != early.commit_lsn or txn.commit_ts != early.commit_ts \
                or txn.commit_lsn <= early.done:
            self.wh.rollback()
            if txn is not None and txn.commit_lsn > early.done:
                self.wrong_guesses += 1
            return None
        self.early_writes += 1
        return early

    def _copy(self, txns: list[Transaction], batch: Batch, early: Early | None = None) -> tuple[int, dict[str, int]]:
        """COPY the transactions' changes into their bronze tables, in commit order. Returns the
        changes written and the rows written by bronze table.

        A table new to bronze gets its change table and its schema record in this same
        transaction, positioned at the first transaction that changed it."""
        counts: dict[str, int] = {}
        by_target: dict[str, list[Transaction]] = {}
        registered: set[str] = set()
        total = 0
        for txn in txns:
            for bronze, ordinal, event, table, is_new in txn.schema_events:
                if is_new:
                    store.create_bronze_table(self.wh, bronze)
                    registered.add(bronze)
                store.record_table(self.wh, bronze, table, txn.commit_lsn, txn.commit_ts, ordinal, event)
            for target in sorted(txn.targets):
                if target in batch.new_tables and target not in registered:
                    # idempotent: a run that crashed after committing it left the same record
                    store.create_bronze_table(self.wh, target)
                    store.record_table(self.wh, target, batch.new_tables[target], txn.commit_lsn, txn.commit_ts)
                    registered.add(target)
                by_target.setdefault(target, []).append(txn)
            total += txn.changes
        for target, target_txns in sorted(by_target.items()):
            spilled = {txn.xid: self.spills.get(txn.xid, target) for txn in target_txns if target in txn.spilled}
            rows = sum(len(txn.rows.get(target, ())) for txn in target_txns) + sum(f.rows for f in spilled.values()
                                                                                   if f is not None)
            if not rows:
                continue
            counts[target] = counts.get(target, 0) + rows
            copy = sql.SQL("copy {} ({}) from stdin").format(sql.Identifier(store.BRONZE_SCHEMA, target), _COLUMNS)
            with self.wh.cursor().copy(copy) as out:
                for txn in target_txns:
                    if txn.xid in spilled and not (early and early.xid == txn.xid and target in early.targets):
                        # spilled rows first: they precede those still in memory
                        spilled_file = spilled[txn.xid]
                        assert spilled_file is not None, "a spilled transaction's files live until it is written"
                        for chunk in spilled_file.copy_chunks(txn.commit_lsn, txn.commit_ts):
                            out.write(chunk)
                    if txn.rows.get(target):
                        out.write(copy_block(txn.rows[target], txn.xid, txn.commit_lsn, txn.commit_ts))
        return total, counts
