"""Online snapshots: one table's rows read while the stream runs, without a lock (DBLog).

A table whose past rows are not in the change stream (published after capture started, selected
later, or re-synced on its own with `medallion resync --table`) is read in chunks of its key
order, each between two watermarks written into the stream (Netflix's DBLog, as Debezium's
incremental snapshots do it):

    low watermark  ->  SELECT the next chunk_rows rows after the last key  ->  high watermark

A watermark is a transactional logical decoding message (`pg_logical_emit_message`, prefix
medallion.snapshot): pgoutput delivers it with messages 'true' (PostgreSQL 14+), wal2json too,
and any role may emit one, so no signalling table has to be created on the source and no
superuser is needed (measured on PostgreSQL 15: a role with LOGIN only may call it). Its
content carries a token new for every run, so a watermark another session wrote, or one
re-delivered from a run that crashed, opens no window.

When the stream reaches the low watermark, the window opens: every change to the table inside
it is written as usual, and its key (old and new) is dropped from the chunk, because the stream's
version is newer than what the SELECT saw. A truncate empties the chunk. At the high watermark
the rest of the chunk is exactly the table's rows at that point of the stream: they join the
high watermark's own transaction as R rows (snapshot rows, stamped with its commit position and
time), and the snapshot's progress (last key, counters; finished after a short chunk) is
recorded in the same warehouse transaction. Bronze stays exactly once across a crash at any
point: a chunk is in bronze with its progress or neither is; a re-run reads on after the last key
bronze holds, with a new token.

Silver takes an R row that equals its key's current version as no change (history.sql), so rows
the stream already brought keep their versions; the rows the table held before it joined
capture begin at their chunk's time. Their history before the snapshot is not known:
bronze.online_snapshot says from when the table is complete (finished_ts).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import psycopg
from psycopg import sql

from medallion.bronze.value_forms import row_values
from medallion.db import connect, sql_text
from medallion.errors import SelectionError
from medallion.source.catalog import SourceTable

PREFIX = "medallion.snapshot"
# the reason of a table whose initial snapshot was interrupted (medallion.bronze.snapshot): its chunks
# read online skip the rows the initial snapshot's copied chunks hold already (copied_rows_filter)
INITIAL_REASON = "initial snapshot interrupted"
CHUNK_ROWS = 1024  # rows per chunk (Debezium's default): the window's memory and the SELECT's size
CHUNK_ROWS_ENV = "MEDALLION_SNAPSHOT_CHUNK_ROWS"  # overrides it (tests use small chunks: many windows)
PUBLICATION_CHECK_EVERY = 2.0  # seconds between two checks that a table waiting for its snapshot is published
REQUESTS_EVERY = 5.0  # seconds between two looks of a following ingester for `resync --table` requests
PROGRESS_EVERY = 10.0  # seconds between two progress lines of a long snapshot


@dataclass
class Job:
    """One table's online snapshot, as far as this run knows it."""

    bronze: str
    table: SourceTable
    key: tuple[str, ...]
    reason: str
    after: dict | None = None  # the last key in bronze (typed jsonb values); None before the first chunk
    chunks: int = 0
    rows: int = 0
    started: bool = False  # its start is recorded (or rides on a transaction already)
    published: bool = False  # pgoutput sends it (checked before its first chunk)
    checked: float = 0.0  # when that was last checked
    gone: int = 0  # keys bronze held as live that the snapshot did not find (ended by it)
    skip: sql.Composable | None = None  # rows not to read (INITIAL_REASON: the copied chunks' rows)


@dataclass
class Window:
    """A chunk between its watermarks."""

    job: Job
    token: str
    rows: dict[tuple, tuple[str, str]] = field(default_factory=dict)  # key -> (full_row text, source_table)
    last: dict | None = None  # the chunk's last key (typed): the next chunk starts after it
    final: bool = False  # fewer rows than asked: the table ends here
    open: bool = False  # the low watermark was seen


def ensure_schema(wh: psycopg.Connection) -> None:
    wh.execute(sql_text("medallion.bronze", "online_snapshot_schema.sql"))


def chunk_key(table: SourceTable, declared: tuple[str, ...] | None) -> tuple[str, ...]:
    """The columns chunks are ordered by: the primary key (or replica identity index), else the key
    declared in medallion.toml; a table with neither is refused, naming the fix."""
    key = table.key or tuple(declared or ())
    if not key:
        raise SelectionError(f"{table.qualified} has no primary key: an online snapshot reads it in key order; "
                             f'declare one in medallion.toml ([tables."{table.schema}.{table.name}"] key = [...])')
    missing = [k for k in key if k not in {c.name for c in table.columns}]
    if missing:
        raise SelectionError(f"{table.qualified} has no column {missing[0]!r} of its declared key: fix key in "
                             f'[tables."{table.schema}.{table.name}"] of medallion.toml')
    return key


def open_jobs(wh: psycopg.Connection, slot: str) -> list[tuple]:
    """(id, bronze, schema, table, reason, key, last_key, chunks, rows, started) of unfinished snapshots."""
    ensure_schema(wh)
    return wh.execute(sql_text("medallion.bronze", "online_snapshot_open.sql"), {"slot": slot}).fetchall()


def record(wh: psycopg.Connection, slot: str, commit_lsn: int, commit_ts: object, marks: list[tuple]) -> None:
    """Apply a committed transaction's marks in the warehouse transaction that writes it."""
    for mark in marks:
        if mark[0] == "start":
            job: Job = mark[1]
            ensure_schema(wh)
            wh.execute(sql_text("medallion.bronze", "online_snapshot_start.sql"), {
                "slot": slot, "bronze": job.bronze, "schema": job.table.schema, "table": job.table.name,
                "reason": job.reason, "key": list(job.key), "lsn": commit_lsn, "ts": commit_ts})
        else:
            _, job, last_key, rows, final, ordinal, event_lsn = mark
            if final and job.reason != INITIAL_REASON:  # skipped rows are live, not gone; deletes all streamed
                _end_gone_keys(wh, slot, job, commit_lsn, commit_ts, ordinal, event_lsn)
            wh.execute(sql_text("medallion.bronze", "online_snapshot_chunk_done.sql"), {
                "slot": slot, "bronze": job.bronze, "last_key": orjson.dumps(last_key).decode() if last_key else None,
                "rows": rows, "final": final, "lsn": commit_lsn, "ts": commit_ts})


def _end_gone_keys(wh: psycopg.Connection, slot: str, job: Job, commit_lsn: int, commit_ts: object, ordinal: int,
                   event_lsn: int) -> None:
    """Keys bronze holds as live that the snapshot did not find end at its last high watermark
    (online_snapshot_gone.sql): a re-sync of one table repairs a delete bronze never got."""
    def key(column: str) -> sql.Composable:
        return sql.SQL("jsonb_build_array({})").format(sql.SQL(", ").join(
            sql.SQL("{} -> {}").format(sql.Identifier(column), sql.Literal(k)) for k in job.key))

    gone = wh.execute(sql.SQL(sql_text("medallion.bronze", "online_snapshot_gone.sql")).format(
        table=sql.Identifier("bronze", job.bronze), key=key("full_row"), old_key=key("old_row")), {
        "slot": slot, "bronze": job.bronze, "lsn": commit_lsn, "ts": commit_ts, "ordinal": ordinal,
        "event_lsn": event_lsn}).rowcount
    if gone:
        job.gone = gone


class OnlineSnapshots:
    """The online snapshots of one ingest run, driven from its stream loop (one chunk at a time).

    Calls from the loop: see() for every captured change, message() for every medallion.snapshot
    message, tick() when idle or after a commit (starts the next chunk). Marks for the warehouse
    ride on the transaction they belong to (txn.snapshot_marks) and are applied by record()."""

    def __init__(self, source_dsn: str, warehouse_dsn: str, publication: str, plugin: str,
                 notify: Callable[[str], None], chunk_rows: int | None = None) -> None:
        self.source_dsn = source_dsn
        self.warehouse_dsn = warehouse_dsn
        self._wh: psycopg.Connection | None = None
        self._looked = time.monotonic()
        self._taken: set[int] = set()  # warehouse rows (snapshot_id) this run has taken up
        self._finished: set[str] = set()  # bronze tables whose snapshot this run finished
        self._publication_tables: set[tuple[str, str]] | None = None  # what the publication sent when last looked
        self._look_at_publication = False
        self.publication = publication
        self.plugin = plugin
        self.notify = notify
        self.chunk_rows = chunk_rows or int(os.environ.get(CHUNK_ROWS_ENV) or CHUNK_ROWS)
        self.jobs: list[Job] = []
        self.window: Window | None = None
        self._src: psycopg.Connection | None = None
        self._run = secrets.token_hex(8)
        self._serial = 0
        self._said = 0.0

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    @property
    def holds_drain(self) -> bool:
        """A drain (`medallion ingest`, `run`) waits for a chunk under way or a table ready to read,
        not for one the publication does not send yet (the next run takes it up)."""
        return self.window is not None or any(job.published or job.checked == 0.0 for job in self.jobs)

    def close(self) -> None:
        for conn in (self._src, self._wh):
            if conn is not None and not conn.closed:
                conn.close()

    def take(self, row: tuple) -> bool:
        """Whether an open snapshot the warehouse lists is new to this run (not one it runs, nor
        one it finished whose last chunk the writer has not committed yet)."""
        snapshot_id, bronze, started = row[0], row[1], row[-1]
        if snapshot_id in self._taken or self.wanted(bronze) or (started and bronze in self._finished):
            return False
        self._taken.add(snapshot_id)
        return True

    def requests(self, slot: str) -> list[tuple]:
        """Every REQUESTS_EVERY seconds: the open snapshots the warehouse lists (`resync --table`)."""
        if time.monotonic() - self._looked < REQUESTS_EVERY:
            return []
        self._looked = time.monotonic()
        self._look_at_publication = True
        if self._wh is None or self._wh.closed:
            self._wh = connect(self.warehouse_dsn, "warehouse", autocommit=True)
        return [row for row in open_jobs(self._wh, slot) if self.take(row)]

    def _source(self) -> psycopg.Connection:
        if self._src is None or self._src.closed:
            self._src = connect(self.source_dsn, "source", autocommit=True)
        return self._src

    # -- jobs ----------------------------------------------------------------------------------

    def add(self, bronze: str, table: SourceTable, key: tuple[str, ...], reason: str, txn: object = None,
            after: dict | None = None, chunks: int = 0, rows: int = 0, started: bool = False) -> Job:
        """A table to snapshot. With txn, its start is recorded with that transaction (the table's
        first captured change); otherwise with its first chunk's low watermark."""
        for job in self.jobs:
            if job.bronze == bronze:
                return job
        job = Job(bronze, table, key, reason, after, chunks, rows, started)
        if txn is not None and not started:
            txn.snapshot_marks.append(("start", job))
            job.started = True
        self.jobs.append(job)
        return job

    def wanted(self, bronze: str) -> bool:
        return any(job.bronze == bronze for job in self.jobs)

    # -- the stream --------------------------------------------------------------------------

    def see(self, txn: object, target: str, op: str, full_row: str | None, old_row: str | None) -> None:
        """A captured change: inside an open window of its table, its keys leave the chunk. A
        snapshot not yet started is recorded with this transaction (a new table's first change:
        a crash after it leaves the snapshot to finish, not a table that looks complete)."""
        for job in self.jobs:
            if not job.started:
                txn.snapshot_marks.append(("start", job))
                job.started = True
        window = self.window
        if window is None or not window.open or window.job.bronze != target or not window.rows:
            return
        if op == "T":
            window.rows.clear()
            return
        key = window.job.key
        for text in (full_row, old_row):
            if text:
                row = orjson.loads(text)
                window.rows.pop(tuple(row.get(k) for k in key), None)

    def message(self, txn: object, content: str | bytes, lsn: int) -> None:
        """A medallion.snapshot watermark in the stream (txn: the transaction it is in)."""
        window = self.window
        try:
            mark = orjson.loads(content)
        except orjson.JSONDecodeError:
            return
        if window is None or txn is None or mark.get("token") != window.token:
            return  # another run's (re-delivered after a crash) or someone else's: no window
        job = window.job
        if mark.get("mark") == "low":
            window.open = True
            if not job.started:
                txn.snapshot_marks.append(("start", job))
                job.started = True
            return
        if mark.get("mark") != "high" or not window.open:
            return
        rows = txn.rows.setdefault(job.bronze, [])
        for full_row, source_table in window.rows.values():
            txn.ordinal += 1
            rows.append((txn.ordinal, lsn, "R", full_row, None, source_table))
            txn.in_memory += 1
            txn.changes += 1
            txn.bytes += len(full_row) + 200
        written = len(window.rows)
        txn.snapshot_marks.append(("chunk", job, window.last or job.after, written, window.final, txn.ordinal, lsn))
        job.after = window.last or job.after
        job.chunks += 1
        job.rows += written
        self.window = None
        if window.final:
            self.jobs.remove(job)
            self._finished.add(job.bronze)
            self.notify(f"online snapshot of {job.table.qualified}: {job.rows:,} rows in {job.chunks:,} chunks, done")
        elif time.monotonic() - self._said >= PROGRESS_EVERY:
            self._said = time.monotonic()
            self.notify(f"online snapshot of {job.table.qualified}: {job.rows:,} rows in {job.chunks:,} chunks so far")

    def published_changed(self, slot: str) -> bool:
        """Whether the publication's list of tables changed since the last look (pgoutput; looked
        at with requests(), or at once the first time)."""
        if self.plugin != "pgoutput" or not (self._look_at_publication or self._publication_tables is None):
            return False
        self._look_at_publication = False
        now = set(self._source().execute(sql_text("medallion.bronze", "published_tables.sql"),
                                         {"publication": self.publication}).fetchall())
        changed = self._publication_tables is not None and now != self._publication_tables
        self._publication_tables = now
        return changed

    def tick(self) -> None:
        """Start the next chunk when none is between its watermarks."""
        if self.window is not None or not self.jobs:
            return
        src = self._source()
        job = next((job for job in self.jobs if self._published(src, job)), None)
        if job is None:
            return
        self._serial += 1
        token = f"{self._run}.{self._serial}"
        if job.chunks == 0 and job.after is None and self._said == 0.0:
            self._said = time.monotonic()
            self.notify(f"online snapshot of {job.table.qualified} ({job.reason}): reading it in chunks of "
                        f"{self.chunk_rows:,} rows while the stream runs")
        self._emit(src, token, "low")
        window = Window(job, token)
        if job.reason == INITIAL_REASON and job.skip is None:
            if self._wh is None or self._wh.closed:
                self._wh = connect(self.warehouse_dsn, "warehouse", autocommit=True)
            job.skip = copied_rows_filter(self._wh, job.bronze)
        try:
            chunk = src.execute(self._chunk_sql(job)).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
            # dropped, or its key renamed, since: the next run sees the table as it is then
            self.jobs.remove(job)
            self.notify(f"{job.table.qualified} changed under its online snapshot (dropped, or its key renamed): "
                        "the snapshot stops; run 'medallion resync --table' if the table is still captured")
            return
        for key_json, full_row, source_table in chunk:
            row = orjson.loads(full_row)
            window.rows[tuple(row.get(k) for k in job.key)] = (full_row, source_table)
            window.last = key_json
        window.final = len(window.rows) < self.chunk_rows
        self._emit(src, token, "high")
        self.window = window

    def _published(self, src: psycopg.Connection, job: Job) -> bool:
        """pgoutput sends only what the publication lists: a chunk read before the table is in it
        could miss a change made after the chunk and before the ALTER PUBLICATION."""
        if job.published or self.plugin != "pgoutput":
            return True
        if time.monotonic() - job.checked < PUBLICATION_CHECK_EVERY:
            return False
        first = job.checked == 0.0
        job.checked = time.monotonic()
        job.published = src.execute(sql_text("medallion.bronze", "online_snapshot_published.sql"),
                                    {"publication": self.publication, "relid": job.table.oid}).fetchone()[0]
        if not job.published and first:
            self.notify(f"publication {self.publication} does not send {job.table.qualified}: its rows are read "
                        "once it does; run 'medallion prepare-source'")
        return job.published

    def _emit(self, src: psycopg.Connection, token: str, mark: str) -> None:
        src.execute(sql_text("medallion.bronze", "online_snapshot_mark.sql"),
                    {"prefix": PREFIX, "content": orjson.dumps({"token": token, "mark": mark}).decode()})

    def _chunk_sql(self, job: Job) -> sql.Composable:
        table = sql.Identifier(job.table.schema, job.table.name)
        t_keys = sql.SQL(", ").join(sql.Identifier("t", k) for k in job.key)
        p_keys = sql.SQL(", ").join(sql.Identifier("p", k) for k in job.key)
        key_json = sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
            sql.SQL("{}, {}").format(sql.Literal(k), sql.Identifier("t", k)) for k in job.key))
        where = sql.SQL("")
        if job.after is not None:
            where = sql.SQL(sql_text("medallion.bronze", "online_snapshot_after.sql")).format(
                t_keys=t_keys, p_keys=p_keys, table=table, after=sql.Literal(orjson.dumps(job.after).decode()))
        if job.skip is not None:
            where = sql.SQL("{} {} not ({})").format(where, sql.SQL("and" if job.after is not None else "where"),
                                                     job.skip)
        columns = [(c.name, c.type) for c in job.table.columns]
        return sql.SQL(sql_text("medallion.bronze", "online_snapshot_chunk.sql")).format(
            key_json=key_json, row=sql.SQL("(select row_to_json(v.*) from (select {}) as v)::text").format(
                row_values(columns, self.plugin)),
            table=table, t_keys=t_keys, where=where, limit=sql.Literal(self.chunk_rows))


def copied_rows_filter(wh: psycopg.Connection, bronze: str) -> sql.Composable:
    """The rows of t that the interrupted initial snapshot's copied chunks hold (bronze.snapshot_chunk):
    a tuple still in a copied block range of its leaf is the very tuple copied, or a newer version
    whose change the stream brought. Only while the leaf's file is the one planned: a rewrite
    (VACUUM FULL, CLUSTER) moves tuples, and then nothing is skipped (an R row equal to its key's
    version is no change in silver)."""
    ranges = wh.execute(sql_text("medallion.bronze", "snapshot_copied_ranges.sql"), {"bronze": bronze}).fetchall()
    terms = [sql.SQL("(t.tableoid = {relid}::oid and pg_relation_filenode(t.tableoid) = {node}::oid and "
                     "t.ctid >= {low}::tid{high})").format(
        relid=sql.Literal(relid), node=sql.Literal(node), low=sql.Literal(f"({first},0)"),
        high=sql.SQL("") if end is None else sql.SQL(" and t.ctid < {}::tid").format(sql.Literal(f"({end},0)")))
        for relid, node, first, end in ranges]
    return sql.SQL(" or ").join(terms) if terms else sql.SQL("false")
