"""Exactly-once delivery from the source's replication slot into bronze, streamed: the loop.

The slot is streamed over the replication protocol (medallion.bronze.stream) with pgoutput
(the default) or wal2json, decoded into named events (medallion.bronze.decoders, .events).
Each change is routed to its bronze table (medallion.bronze.routing); committed transactions
are gathered and handed to a writer thread (medallion.bronze.writer), which writes them through
the destination (medallion.bronze.destination; bronze in PostgreSQL is
medallion.bronze.postgres_destination): the changes and the new position atomically, then,
once that has committed, the position is confirmed to the server. A crash at any point leaves a
batch wholly written (the server sends it again; it is skipped: its commit position is not
above the recorded one) or not at all (it is written after the restart). Before the loop,
medallion.bronze.startup checks that bronze and the slot belong together.

Memory is bounded by configuration, not by transaction size: a transaction whose changes grow
past SPILL_BYTES before its commit arrives is spilled (Destination.spill: local files,
medallion.bronze.spill) and written into its bronze tables once: when it commits, or with
pgoutput while it streams, under a commit position guessed from its Begin and checked at its
Commit (medallion.bronze.early). Batches are written at batch_size changes or SPILL_BYTES,
whichever comes first.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import orjson
import psycopg
import psycopg2

from medallion.bronze import checks, ddl, online_snapshot, publication, store, unchanged
from medallion.bronze import slot as slots
from medallion.bronze.decoders import decoder_for, lsn_to_int
from medallion.bronze.destination import Batch, BatchResult, Transaction
from medallion.bronze.early import CommitGuess
from medallion.bronze.events import Begin, Change, Commit, Message, RelationSeen
from medallion.bronze.postgres_destination import PostgresDestination
from medallion.bronze.routing import Router
from medallion.bronze.startup import Startup
from medallion.bronze.stream import ReplicationStream
from medallion.bronze.writer import CaughtUp, Spill, Writer
from medallion.config import ProjectConfig
from medallion.db import Endpoints, connect
from medallion.errors import ConnectionFailed, ConnectionLost, SourceNotReady
from medallion.selection import CapturePlan, Selection

__all__ = ["DEFAULT_BATCH", "BatchResult", "Ingester", "connection_lost", "resolve_plugin", "stop_on_interrupt"]

DEFAULT_BATCH = 50_000  # captured changes per warehouse transaction (whole source transactions)
SPILL_BYTES = 16 * 2**20  # row text of one open transaction (or one batch) held in memory before writing
ROW_OVERHEAD = 200  # bytes a change costs in memory beyond its row text (tuple, ints, names)
CAUGHT_UP_EVERY = 1.0  # seconds between two records of an idle, caught-up stream
# a commit's timestamp is taken just before its record is written and flushed: a commit stamped
# this long before the flush position was read is surely at or before it
COMMIT_LATENCY_MARGIN = timedelta(seconds=1)
IDLE_WAIT = 0.05  # seconds to wait for a message before writing what is gathered
MAX_BATCH_DELAY = 0.25  # seconds a committed transaction may wait for its batch under steady traffic


def resolve_plugin(config: ProjectConfig, environ_plugin: str | None) -> str | None:
    """The plugin asked for: MEDALLION_PLUGIN, else medallion.toml's [capture] plugin, else None."""
    return environ_plugin or config.plugin


class Ingester:
    """Owns the source and warehouse connections of one ingest run. Use as a context manager."""

    def __init__(self, endpoints: Endpoints, slot: str, config: ProjectConfig, batch_size: int = DEFAULT_BATCH,
                 wait: float = 30.0, notify: Callable[[str], None] = lambda _: None,
                 plugin: str | None = None, spill_bytes: int = SPILL_BYTES) -> None:
        self.endpoints = endpoints
        self.slot = slots.validate_slot_name(slot)
        self.config = config
        self.batch_size = batch_size
        self.spill_bytes = spill_bytes
        self.wait = wait
        self.notify = notify
        self.asked_plugin = plugin
        self.plugin = plugin or slots.DEFAULT_PLUGIN
        self._said: set[str] = set()  # lines told once per run
        self._guess = CommitGuess()  # a large transaction's commit position (medallion.bronze.early)
        self._online = online_snapshot.OnlineSnapshots(endpoints.source, endpoints.warehouse,
                                                       publication.publication_name(self.slot), self.plugin, notify)

    def __enter__(self) -> Ingester:
        self.src = connect(self.endpoints.source, "source", autocommit=True)
        self.wh = connect(self.endpoints.warehouse, "warehouse")
        self.lock = slots.IngesterLock(self.src, self.slot)
        try:
            checks.check_wal_level(self.src)
            self.lock.acquire(self.wait, self.notify)
        except BaseException:
            self.close()
            raise
        self.destination = PostgresDestination(self.wh, self.slot)
        self._guess.src, self._guess.say = self.src, self._say_once
        self.router = Router(self.config, self.src, self._online, self.notify, self._say_once)
        self.startup = Startup(self.endpoints, self.src, self.wh, self.destination, self.slot, self.config,
                               self.asked_plugin, self.plugin, self.wait, self.notify, self._say_once)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._online.close()
        for conn in (getattr(self, "wh", None), getattr(self, "src", None)):
            if conn is not None and not conn.closed:
                conn.close()  # closing the source session also releases the advisory lock

    # -- start: snapshot or resume -----------------------------------------------------------

    def start(self, progress: Callable[[str, int], None] = lambda *_: None) -> int:
        """Make sure bronze and the slot belong together; take the initial snapshot if needed
        (medallion.bronze.startup). Returns the number of snapshot rows written now (0 when resuming)."""
        ddl_trigger = ddl.installed(self.src)
        rows = self.startup.start(progress, ddl_trigger)
        self.plugin = self.startup.plugin
        self.router.load(self.wh, ddl_trigger)
        self.destination.discard_spill()  # a spilled transaction that never committed: sent again
        self._resume_online_snapshots()
        return rows

    def resync(self, progress: Callable[[str, int], None] = lambda *_: None) -> int:
        """After a lost slot: a new snapshot into the existing bronze as a new epoch (see
        medallion.bronze.resync). Returns the number of rows the epoch holds."""
        return self.startup.resync(progress)

    def plan(self) -> CapturePlan:
        """The capture plan now: the source's catalog, bronze's recorded names kept."""
        return self.startup.plan()

    def selection(self) -> Selection:
        return self.plan().selection

    def _resume_online_snapshots(self) -> None:
        """Online snapshots a previous run left unfinished (or `resync --table` asked for) go on
        after the last key bronze holds (medallion.bronze.online_snapshot)."""
        self._online.plugin = self.plugin
        jobs = [row for row in online_snapshot.open_jobs(self.wh, self.slot) if self._online.take(row)]
        self.wh.commit()
        self.router.take_online_jobs(jobs)
        self._online.published_changed(self.slot)  # what the publication sends now: the follower watches it
        self.router.capture_unrecorded(self.selection().captured)  # selected, or created unannounced, meanwhile

    def _poll_online(self) -> None:
        """Now and then while streaming: `resync --table` requests, and tables the publication sends
        now that bronze has not seen yet (published by their owner, with no change since)."""
        self.router.take_online_jobs(self._online.requests(self.slot))
        if self._online.published_changed(self.slot):
            self.router.capture_unrecorded(self.router.published_now())

    def _say_once(self, line: str) -> None:
        if line and line not in self._said:
            self._said.add(line)
            self.notify(line)

    # -- the loop ------------------------------------------------------------------------------

    def _stream(self, start_lsn: int) -> ReplicationStream:
        decoder = decoder_for(self.plugin)
        self._decoder = decoder
        return ReplicationStream(self.endpoints.source, self.slot,
                                 decoder.options(publication.publication_name(self.slot),
                                                 self.src.info.server_version), start_lsn)

    def _submit_write(self, writer: Writer, txns: list[Transaction]) -> None:
        """Hand committed transactions to the writer, with what it must record beside them."""
        new_tables, left_out = self.router.take_for_batch(txns)
        writer.submit(Batch(txns, new_tables, left_out))

    def _report(self, writer: Writer, stream: ReplicationStream, on_batch: Callable[[BatchResult], None]) -> None:
        """Results of the batches the writer committed; their positions confirmed to the server."""
        for result in writer.results():
            on_batch(result)
        if writer.committed_lsn:
            stream.confirm(writer.committed_lsn)

    def run(self, should_stop: Callable[[], bool], on_batch: Callable[[BatchResult], None],
            until_caught_up: bool) -> None:
        """Stream the slot into bronze until should_stop() says so, or (until_caught_up) until
        everything the source had flushed when this began is in bronze.

        This thread reads and parses; a writer thread writes to the destination meanwhile (the
        server decodes, Python parses and the warehouse COPYs at the same time). Positions are
        confirmed to the server from here, once the writer has committed them."""
        state = store.read_state(self.wh, self.slot)
        self.wh.commit()
        assert state is not None, "start() records the state before streaming"
        resumed_at = lsn_to_int(state.last_commit_lsn)
        at, flushed = self.src.execute("select clock_timestamp(), pg_current_wal_flush_lsn()::text").fetchone()
        probe = {"at": at, "lsn": lsn_to_int(flushed), "checked": time.monotonic(), "recorded": False}
        pending: list[Transaction] = []
        pending_bytes = pending_changes = 0
        pending_since = time.monotonic()  # when the oldest pending transaction committed (seen)
        open_txn: Transaction | None = None
        writer = Writer(self.destination)
        writer.start()
        try:
            with self._stream(resumed_at) as stream:
                asked = False
                messages = 0
                while not should_stop():
                    messages += 1
                    if messages % 1000 == 0:
                        self._report(writer, stream, on_batch)
                    message = stream.read(IDLE_WAIT)
                    if message is None:
                        self._report(writer, stream, on_batch)
                        self._poll_online()
                        if self._online.busy:
                            self._online.tick()  # the next chunk between its watermarks
                        if pending:
                            self._submit_write(writer, pending)
                            pending, pending_bytes, pending_changes = [], 0, 0
                        elif open_txn is None and writer.idle():
                            if stream.wal_end >= probe["lsn"]:
                                # everything committed before the probe is in bronze: say so (the horizon)
                                if not probe["recorded"]:
                                    writer.submit(CaughtUp(probe["at"] - COMMIT_LATENCY_MARGIN))
                                    probe["recorded"] = True
                                if until_caught_up and not self._online.holds_drain:
                                    break
                                if time.monotonic() - probe["checked"] >= CAUGHT_UP_EVERY:
                                    at, flushed = self.src.execute(
                                        "select clock_timestamp(), pg_current_wal_flush_lsn()::text").fetchone()
                                    probe.update(at=at, lsn=lsn_to_int(flushed), checked=time.monotonic(),
                                                 recorded=False)
                                    asked = False
                            stream.confirm(stream.wal_end)  # nothing in flight: the WAL so far is done with
                            if not asked:
                                stream.ask_position()
                                asked = True
                        continue
                    asked = False
                    for event in self._decoder.feed(message.payload, message.data_start):
                        if type(event) is Change:
                            if open_txn is None:
                                raise SourceNotReady("a row change outside a transaction: is the slot's plugin "
                                                     f"{self.plugin}?")
                            self._on_change(open_txn, event, pending, writer)
                        elif type(event) is Begin:
                            open_txn = Transaction(xid=event.xid, commit_ts=event.commit_ts,
                                                   final_lsn=event.final_lsn)
                        elif type(event) is Commit:
                            if open_txn is None:
                                raise SourceNotReady("a commit without its begin in the stream")
                            open_txn.commit_lsn = event.commit_lsn
                            open_txn.commit_ts = event.commit_ts if event.commit_ts is not None else open_txn.commit_ts
                            open_txn.redelivered = open_txn.commit_lsn <= resumed_at
                            self._guess.learn(open_txn.final_lsn, open_txn.commit_lsn)
                            if not pending:  # (a large transaction's first spill may have written them)
                                pending_since = time.monotonic()
                                pending_bytes = pending_changes = 0
                            pending.append(open_txn)
                            pending_changes += open_txn.in_memory
                            pending_bytes += open_txn.bytes
                            open_txn = None
                            if pending_changes >= self.batch_size or pending_bytes >= self.spill_bytes \
                                    or time.monotonic() - pending_since >= MAX_BATCH_DELAY:
                                self._submit_write(writer, pending)
                                pending, pending_bytes, pending_changes = [], 0, 0
                            if self._online.busy:
                                self._online.tick()
                        elif type(event) is Message:
                            if open_txn is not None and event.prefix == ddl.MESSAGE_PREFIX:
                                self.router.on_ddl(open_txn, ddl.parse_message(event.content))
                            elif event.prefix == online_snapshot.PREFIX:
                                self._online.message(open_txn, event.content, message.data_start)
                        elif type(event) is RelationSeen and not self.router.ddl_trigger and open_txn is not None:
                            self.router.on_relation(open_txn, event.relation)
                if pending:
                    self._submit_write(writer, pending)
                writer.finish()
                self._report(writer, stream, on_batch)
        finally:
            writer.stop()

    def _on_change(self, txn: Transaction, change: Change, pending: list[Transaction], writer: Writer) -> None:
        """One row change into its transaction: routed, completed, held; spilled when it grows too big."""
        txn.ordinal += 1
        routed = self.router.route(change.relation, txn)
        if routed is None:
            return
        target, source_table = routed
        full_row, old_row = change.full_row, change.old_row
        if change.op == "U" and (change.missing is not None or self.plugin == "wal2json"):
            full_row = self._complete_unchanged(txn, pending, writer, target, change)
        if self._online.jobs:  # inside a chunk's window, the stream wins (OnlineSnapshots.busy, inlined)
            self._online.see(txn, target, change.op, full_row, old_row)
        target_rows = txn.rows.get(target)
        if target_rows is None:
            target_rows = txn.rows[target] = []
        # a CapturedRow's fields as a plain tuple: its constructor is a Python call, ~5% of a change
        target_rows.append((txn.ordinal, change.lsn, change.op, full_row, old_row, source_table))
        txn.in_memory += 1
        txn.changes += 1
        txn.bytes += ROW_OVERHEAD + (len(full_row) if full_row else 0) + (len(old_row) if old_row else 0)
        if txn.bytes >= self.spill_bytes:
            if not txn.spilled and txn.final_lsn is not None:
                # pgoutput: written early under a guessed commit position (medallion.bronze.early),
                # in a warehouse transaction of its own: the committed transactions before it first
                if pending:
                    self._submit_write(writer, pending[:])
                    pending.clear()
                txn.early = (self._guess.end(txn.final_lsn), txn.commit_ts)
            writer.submit(Spill(txn.xid, txn.rows, txn.early))
            txn.spilled.update(txn.rows)
            txn.versions.spill(txn.rows)
            txn.rows, txn.in_memory, txn.bytes = {}, 0, 0

    def _complete_unchanged(self, txn: Transaction, pending: list[Transaction], writer: Writer, target: str,
                            change: Change) -> str:
        """An UPDATE's row with its unchanged TOASTed values taken from the row's previous version
        (medallion.bronze.unchanged): newest first, this transaction, the committed transactions not
        yet written, then the destination (once the writer has written everything handed to it)."""
        recorded = self.router.recorded_tables.get(target)
        if recorded is None or (change.missing is None and recorded.replica_identity == "f"):
            return change.full_row  # wal2json under FULL: completed from the old row (medallion.bronze.rows)
        row = orjson.loads(change.full_row)
        missing = list(change.missing) if change.missing is not None else unchanged.missing_columns(
            row, [c.name for c in recorded.columns])
        if not missing:
            return change.full_row
        key = tuple(recorded.key)
        old_key = orjson.loads(change.old_row) if change.old_row else None
        wanted = unchanged.key_of(old_key if old_key and all(k in old_key for k in key) else row, key)
        previous = None
        if key:
            for earlier in [txn, *(t for t in reversed(pending) if not t.redelivered)]:
                found, previous = earlier.versions.find(earlier.rows.get(target, []), target, key, wanted)
                if found:
                    break
                if earlier.versions.maybe_spilled(target):
                    writer.finish()
                    found, previous = self.destination.spilled_version(earlier.xid, target, key, wanted)
                    if found:
                        break
            else:
                writer.finish()
                previous = self.destination.stored_version(target, key, wanted)
        if previous is None:
            raise SourceNotReady(
                f"an update of {recorded.qualified} left {missing[0]} unchanged (a large value the WAL does not "
                f"repeat without REPLICA IDENTITY FULL) and bronze has no earlier version of the row "
                f"({', '.join(key) or 'no key'} = {', '.join(map(str, wanted))}): run 'medallion prepare-source' "
                "(REPLICA IDENTITY FULL), then 'medallion resync'")
        return unchanged.complete(row, missing, previous)

    def drain(self, on_batch: Callable[[BatchResult], None] = lambda _: None) -> None:
        """Ingest everything the source had committed when this began, then return."""
        self.run(lambda: False, on_batch, until_caught_up=True)

    def follow(self, should_stop: Callable[[], bool], on_batch: Callable[[BatchResult], None]) -> None:
        """Ingest until should_stop() says so (checked between messages)."""
        self.run(should_stop, on_batch, until_caught_up=False)

    def lag_bytes(self) -> int | None:
        row = slots.status(self.src, self.slot)
        return int(row["lag_bytes"]) if row and row["lag_bytes"] is not None else None


_BROKEN = (psycopg.OperationalError, psycopg.InterfaceError, psycopg2.OperationalError, psycopg2.InterfaceError)


def connection_lost(exc: BaseException) -> ConnectionLost | None:
    """The error as a lost connection (a server restart, a network cut), or None when it is not one."""
    if isinstance(exc, ConnectionLost):
        return exc
    if isinstance(exc, ConnectionFailed):
        return ConnectionLost(str(exc))
    if isinstance(exc, _BROKEN):
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        return ConnectionLost(f"lost a connection ({reason})")
    return None


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
