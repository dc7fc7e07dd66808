"""The initial snapshot's chunks: planned in the exported snapshot, copied by parallel workers,
each recorded with its rows; what an interrupted snapshot leaves is handed to online snapshots.

Why and how it stays exactly once: medallion.bronze.snapshot's docstring.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg
from psycopg import sql

from medallion.bronze import online_snapshot, store
from medallion.bronze.destination import Destination
from medallion.bronze.postgres_destination import PostgresDestination
from medallion.db import connect, sql_text
from medallion.errors import MedallionError
from medallion.selection import CapturedTable, Selection

CHUNK_BLOCKS = 1024  # heap blocks per chunk (8 MB): tens of thousands of rows, one warehouse transaction
CHUNK_BLOCKS_ENV = "MEDALLION_SNAPSHOT_CHUNK_BLOCKS"  # overrides it (tests cut small tables into many chunks)
# "N:seconds": after N chunks are committed, each worker waits that long before its next one
# (tests use it to SIGKILL a snapshot part way at a known point)
PAUSE_ENV = "MEDALLION_SNAPSHOT_TEST_PAUSE"
OPEN_LSN = "0/0"  # the ingest state's position while the initial snapshot's chunks land
PROGRESS_EVERY = 5.0  # seconds between two progress lines of one table still being copied
BATCH_BYTES = 256 * 1024  # COPY text handed to the warehouse at once


@dataclass(frozen=True)
class Chunk:
    """One block range of one leaf of a captured table."""

    bronze: str
    name: str  # the captured table, as the CLI shows it
    number: int  # the table's chunks in ordinal order, from 1
    leaf: tuple[str, str]
    source_table: str  # the leaf, format('%I.%I'): bronze rows' source_table
    relid: int  # the leaf's oid, and its file when planned
    filenode: int
    first_block: int
    end_block: int | None  # exclusive; None: to the leaf's end
    first_ordinal: int
    rows: int  # counted in the snapshot
    # The captured root, when the role may not read the leaf itself (a capture role is granted
    # the tables it captures, not each partition, which may be created after the grant): the
    # chunk is then read through the root, filtered to the leaf. Each other leaf then costs a TID
    # range scan of the same blocks, so the leaf is read directly wherever the role may.
    via_root: tuple[str, str] | None = None

    def relation(self) -> sql.Composable:
        """What the chunk's rows are read from, as t."""
        if self.via_root is None:
            return sql.SQL("only {} as t").format(sql.Identifier(*self.leaf))
        return sql.SQL("{} as t").format(sql.Identifier(*self.via_root))

    def range(self) -> sql.Composable:
        """The chunk's rows of t: a TID range scan of its blocks (of its leaf, through the root)."""
        low = sql.SQL("t.ctid >= {}::tid").format(sql.Literal(f"({self.first_block},0)"))
        if self.via_root is not None:
            low = sql.SQL("t.tableoid = {}::oid and {}").format(sql.Literal(self.relid), low)
        if self.end_block is None:
            return low
        return sql.SQL("{} and t.ctid < {}::tid").format(low, sql.Literal(f"({self.end_block},0)"))


def ensure_schema(wh: psycopg.Connection) -> None:
    store.ensure_schema(wh)
    wh.execute(sql_text("medallion.bronze", "snapshot_chunk_schema.sql"))


def chunk_blocks() -> int:
    return max(1, int(os.environ.get(CHUNK_BLOCKS_ENV) or CHUNK_BLOCKS))


def plan(src: psycopg.Connection, captured: CapturedTable) -> list[Chunk]:
    """A table's chunks, with their rows counted in src's snapshot (a count is a fraction of a
    copy's cost): a chunk's first ordinal is the rows before it, in leaf and block order."""
    size = chunk_blocks()
    result: list[Chunk] = []
    ordinal = 1
    for qualified, schema, name, blocks, relid, filenode, readable in src.execute(
            sql_text("medallion.bronze", "snapshot_leaves.sql"), {"relid": captured.table.oid}).fetchall():
        via_root = None if readable else captured.table.ident
        first = 0
        while True:
            end = first + size if first + size < blocks else None
            chunk = Chunk(captured.bronze, captured.name, len(result) + 1, (schema, name), qualified, relid,
                          filenode, first, end, ordinal, 0, via_root)
            rows = src.execute(sql.SQL(sql_text("medallion.bronze", "snapshot_chunk_count.sql")).format(
                relation=chunk.relation(), range=chunk.range())).fetchone()[0]
            result.append(Chunk(**{**chunk.__dict__, "rows": rows}))
            ordinal += rows
            if end is None:
                break
            first = end
    return result


def record_plan(wh: psycopg.Connection, slot: str, planned: list[Chunk], lsn: str) -> None:
    """The chunks, 'planned', in the warehouse transaction that records the ingest state."""
    with wh.cursor().copy("copy bronze.snapshot_chunk (slot_name, bronze_table, chunk, source_table, relid, "
                          "filenode, first_block, end_block, first_ordinal, rows, snapshot_lsn) from stdin") as out:
        for c in planned:
            out.write_row((slot, c.bronze, c.number, c.source_table, c.relid, c.filenode, c.first_block, c.end_block,
                           c.first_ordinal, c.rows, lsn))


def batched(blocks: Iterable[bytes], size: int = BATCH_BYTES) -> Iterator[bytes]:
    """COPY's rows (one message each) joined into pieces of about `size` bytes: one write to the
    warehouse per piece instead of per row (a Python call per row costs as much as the row)."""
    buffer = bytearray()
    for block in blocks:
        buffer += block
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _pause() -> tuple[int, float] | None:
    value = os.environ.get(PAUSE_ENV)
    if not value:
        return None
    after, seconds = value.split(":")
    return int(after), float(seconds)


@dataclass(eq=False)
class Copier:
    """Copies planned chunks with several workers: each a source connection in the exported
    snapshot and a warehouse connection, one warehouse transaction per chunk (rows + record)."""

    source_dsn: str
    warehouse_dsn: str | None
    wh: psycopg.Connection
    destination: Destination
    slot: str
    snapshot_name: str
    select: Callable[[Chunk], sql.Composable]
    progress: Callable[[str, int], None]  # (table, rows) once per table, when its last chunk is in (metrics count it)
    notify: Callable[[str], None] = lambda _: None  # rows so far of a table still copied, every PROGRESS_EVERY s
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _queue: list[Chunk] = field(default_factory=list)
    _errors: list[BaseException] = field(default_factory=list)
    _chunks: dict[str, int] = field(default_factory=dict)  # bronze table -> its chunks
    _done: dict[str, tuple[int, int]] = field(default_factory=dict)  # bronze table -> (chunks, rows) copied
    _said: dict[str, float] = field(default_factory=dict)
    _committed: int = 0
    _started: float = field(default_factory=time.monotonic)
    _pause: tuple[int, float] | None = field(default_factory=_pause)

    def run(self, planned: list[Chunk], workers: int) -> int:
        """Copy every chunk; returns the rows. A worker's failure stops the others after their chunk."""
        self._queue = list(reversed(planned))  # popped from the end: plan order
        self._started = time.monotonic()
        for c in planned:
            self._chunks[c.bronze] = self._chunks.get(c.bronze, 0) + 1
        if self.warehouse_dsn is None or workers <= 1 or len(planned) <= 1:
            self._work(self.wh, self.destination)
        else:
            threads = [threading.Thread(target=self._thread, name=f"medallion-snapshot-{n}", daemon=True)
                       for n in range(min(workers, len(planned)))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if self._errors:
            raise self._errors[0]
        return sum(rows for _, rows in self._done.values())

    def _thread(self) -> None:
        try:
            with connect(self.warehouse_dsn or "", "warehouse") as wh:
                self._work(wh, PostgresDestination(wh, self.slot))
        except BaseException as exc:  # re-raised by run(), in the calling thread
            with self._lock:
                self._errors.append(exc)

    def _next(self) -> Chunk | None:
        with self._lock:
            if self._errors or not self._queue:
                return None
            return self._queue.pop()

    def _work(self, wh: psycopg.Connection, destination: Destination) -> None:
        with connect(self.source_dsn, "source") as src:
            src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            src.read_only = True
            src.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(self.snapshot_name)))
            while (chunk := self._next()) is not None:
                with src.cursor() as cur, cur.copy(sql.SQL("copy ({}) to stdout").format(self.select(chunk))) as out:
                    rows = destination.snapshot_rows(chunk.bronze, batched(out))
                if rows != chunk.rows:  # counted in the same snapshot: never, unless something is badly wrong
                    raise MedallionError(f"the initial snapshot read {rows:,} rows of {chunk.source_table} blocks "
                                         f"{chunk.first_block}.. where it counted {chunk.rows:,}: run 'medallion ingest' "
                                         "again (it finishes the snapshot)")
                done = wh.execute(sql_text("medallion.bronze", "snapshot_chunk_done.sql"), {
                    "slot": self.slot, "bronze": chunk.bronze, "chunk": chunk.number, "rows": rows}).rowcount
                assert done == 1, f"chunk {chunk.number} of {chunk.bronze} is not planned: copied twice?"
                wh.commit()
                self._copied(chunk, rows)

    def _copied(self, chunk: Chunk, rows: int) -> None:
        with self._lock:
            chunks, total = self._done.get(chunk.bronze, (0, 0))
            chunks, total = chunks + 1, total + rows
            self._done[chunk.bronze] = (chunks, total)
            self._committed += 1
            committed = self._committed
            now = time.monotonic()
            if chunks == self._chunks[chunk.bronze]:
                self.progress(chunk.name, total)
            elif now - self._said.get(chunk.bronze, self._started) >= PROGRESS_EVERY:
                self._said[chunk.bronze] = now
                self.notify(f"snapshot {chunk.name}: {total:,} rows so far ({chunks:,} of "
                            f"{self._chunks[chunk.bronze]:,} chunks)")
        if self._pause is not None and committed >= self._pause[0]:
            time.sleep(self._pause[1])


# -- an interrupted snapshot -------------------------------------------------------------------

def is_open(state: store.State | None) -> bool:
    """Whether the initial snapshot's chunks are still landing (or a crash stopped them)."""
    return state is not None and state.last_commit_lsn == OPEN_LSN


def progress_of(wh: psycopg.Connection, slot: str) -> list[tuple]:
    """(bronze table, chunks copied, chunks planned, chunks, rows copied) of the slot's snapshot."""
    if wh.execute("select to_regclass('bronze.snapshot_chunk') is null").fetchone()[0]:
        return []
    return wh.execute(sql_text("medallion.bronze", "snapshot_unfinished.sql"), {"slot": slot}).fetchall()


def unfinished_detail(wh: psycopg.Connection, slot: str) -> str:
    """The line for `medallion status` (and the start-up notice)."""
    rows = progress_of(wh, slot)
    copied = sum(r[1] for r in rows)
    total = sum(r[3] for r in rows)
    left = [r[0] for r in rows if r[2]]
    return (f"the initial snapshot of slot {slot} is unfinished ({copied:,} of {total:,} chunks in bronze, "
            f"{len(left)} tables not complete): 'medallion ingest' or 'medallion run' finishes it, reading the "
            "rest while the stream runs")


def hand_over(wh: psycopg.Connection, slot: str, selection: Selection, started: datetime | None = None) -> str:
    """Finish an interrupted initial snapshot (one warehouse transaction): each table with chunks
    left becomes an online snapshot, and bronze is complete to the consistent point. Returns the
    notice saying so."""
    rows = progress_of(wh, slot)
    by_bronze = {c.bronze: c for c in selection.captured}
    online_snapshot.ensure_schema(wh)
    handed = []
    for bronze, _copied, planned, _total, _rows in rows:
        captured = by_bronze.get(bronze)
        if not planned or captured is None or not captured.key:
            continue  # done; or no longer selected (the start-up check says so) or gone (the stream drops it)
        wh.execute(sql_text("medallion.bronze", "snapshot_online_request.sql"), {
            "slot": slot, "bronze": bronze, "schema": captured.table.schema, "table": captured.table.name,
            "key": list(captured.key), "reason": online_snapshot.INITIAL_REASON})
        handed.append(captured.name)
    wh.execute(sql_text("medallion.bronze", "snapshot_handed_over.sql"), {"slot": slot})
    state = store.read_state(wh, slot)
    wh.execute(sql_text("medallion.bronze", "snapshot_state_finish.sql"), {"slot": slot})
    wh.execute(sql_text("medallion.bronze", "log_insert.sql"), {
        "slot": slot, "kind": "snapshot", "first_lsn": state.snapshot_lsn, "last_lsn": state.snapshot_lsn,
        "transactions": 1, "changes": state.changes_total, "started_at": started or datetime.now(timezone.utc)})
    wh.commit()
    if not handed:
        return f"the initial snapshot of slot {slot} had copied every chunk: finished"
    return (f"the initial snapshot of slot {slot} was interrupted: its copied chunks stay; the rest of "
            f"{', '.join(handed)} is read while the stream runs (online snapshot)")
