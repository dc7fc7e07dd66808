"""Exactly-once delivery from the source's replication slot into bronze, streamed.

The slot is streamed over the replication protocol (medallion.bronze.stream) with pgoutput
(the default) or wal2json (medallion.bronze.decoders). Committed transactions are gathered and
written in batches: the changes and the new position in ONE warehouse transaction, then, once it
has committed, the position is confirmed to the server. A crash at any point leaves a batch
wholly in bronze (the server sends it again; it is skipped: its commit position is not above the
recorded one) or not at all (it is written after the restart). The primary key
(commit_lsn, ordinal) turns any slip into a loud error.

Memory is bounded by configuration, not by transaction size: a transaction whose changes grow
past SPILL_BYTES before its commit arrives is spilled to bronze.ingest_spill in separate
warehouse transactions, and moved into its bronze tables when it commits; batches are written
at batch_size changes or SPILL_BYTES, whichever comes first.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import orjson
import psycopg
import psycopg2
from psycopg import sql

from medallion import naming
from medallion.bronze import checks, ddl, online_snapshot, publication, resync, snapshot, store, unchanged
from medallion.bronze import slot as slots
from medallion.bronze.decoders import RelationRef, decoder_for, int_to_lsn, lsn_to_int
from medallion.bronze.stream import ReplicationStream
from medallion.config import ProjectConfig
from medallion.db import Endpoints, connect, sql_text
from medallion.errors import (BronzeMismatch, ConnectionFailed, ConnectionLost, SlotBusy, SlotLost,
                              SourceNotReady)
from medallion.patterns import display
from medallion.selection import Selection, excluded_note, resolve, selects
from medallion.source.catalog import SourceTable, read_tables

DEFAULT_BATCH = 50_000  # captured changes per warehouse transaction (whole source transactions)
SPILL_BYTES = 16 * 2**20  # row text of one open transaction (or one batch) held in memory before writing
ROW_OVERHEAD = 200  # bytes a change costs in memory beyond its row text (tuple, ints, names)
LAST_ORDINAL = 2**31 - 1  # a position after every change of a transaction
CAUGHT_UP_EVERY = 1.0  # seconds between two records of an idle, caught-up stream
# a commit's timestamp is taken just before its record is written and flushed: a commit stamped
# this long before the flush position was read is surely at or before it
COMMIT_LATENCY_MARGIN = timedelta(seconds=1)
IDLE_WAIT = 0.05  # seconds to wait for a message before writing what is gathered
MAX_BATCH_DELAY = 0.25  # seconds a committed transaction may wait for its batch under steady traffic
BRONZE_COLUMNS = "commit_lsn, ordinal, lsn, xid, op, full_row, old_row, source_table, commit_ts"
SPILL_COLUMNS = "slot_name, xid, target, ordinal, lsn, op, full_row, old_row, source_table"


@dataclass
class BatchResult:
    transactions: int = 0
    changes: int = 0
    skipped_transactions: int = 0  # already in bronze (re-delivered after a crash)
    last_commit_lsn: str | None = None
    last_commit_ts: str | None = None
    seconds: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)  # changes written, by bronze table (metrics)


@dataclass
class Transaction:
    """One source transaction as it arrives: its captured changes by bronze table."""

    xid: int | None
    commit_ts: object = None
    commit_lsn: int = 0
    ordinal: int = 0  # counts every row change, captured or not
    rows: dict[str, list[tuple]] = field(default_factory=dict)  # target -> (ordinal, lsn, op, full, old, table)
    in_memory: int = 0
    bytes: int = 0  # row text held in memory (approximately what the rows cost)
    spilled: set[str] = field(default_factory=set)  # targets with rows in bronze.ingest_spill
    changes: int = 0  # captured, in memory and spilled
    # (bronze table, ordinal, event, the table's schema after it, the bronze table is new)
    schema_events: list[tuple[str, int, str, SourceTable, bool]] = field(default_factory=list)
    snapshot_marks: list[tuple] = field(default_factory=list)  # online snapshot progress (online_snapshot.py)
    redelivered: bool = False  # already in bronze (known at its commit): no source of earlier versions
    versions: unchanged.Versions = field(default_factory=unchanged.Versions)  # for _complete_unchanged


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
        # how a change names its relation -> (bronze table, the relation's qualified name), or
        # None when it is not captured
        self._targets: dict[object, tuple[str, str] | None] = {}
        self._recorded: dict[tuple[str, str], str] = {}  # captured root -> bronze table
        self._recorded_tables: dict[str, store.RecordedTable] = {}
        self._new: dict[str, SourceTable] = {}  # bronze table -> a table first captured by this run
        self._left_out: dict[int, SourceTable] = {}  # oid -> a table seen and not captured, to record
        self._uncaptured: set[int] = set()
        self._catalog: dict[tuple[str, str], SourceTable] | None = None
        self._by_oid: dict[int, SourceTable] = {}
        self._warned: set[object] = set()
        self._said: set[str] = set()  # lines told once per run
        self._ddl_trigger = False  # the source announces DDL itself (medallion.bronze.ddl)
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
        """Make sure bronze and the slot belong together; take the initial snapshot if needed.

        Returns the number of snapshot rows written now (0 when resuming)."""
        self._ddl_trigger = ddl.installed(self.src)
        rows = self._start(progress)
        self._recorded_tables = store.recorded_tables(self.wh)
        self._recorded = {(t.schema, t.name): t.bronze for t in self._recorded_tables.values()}
        self._uncaptured = store.uncaptured_oids(self.wh)
        # a spilled transaction that never committed to bronze: the server sends it again
        self.wh.execute("delete from bronze.ingest_spill where slot_name = %s", [self.slot])
        self.wh.commit()
        self._resume_online_snapshots()
        return rows

    def _resume_online_snapshots(self) -> None:
        """Online snapshots a previous run left unfinished (or `resync --table` asked for) go on
        after the last key bronze holds (medallion.bronze.online_snapshot)."""
        self._online.plugin = self.plugin
        jobs = [row for row in online_snapshot.open_jobs(self.wh, self.slot) if self._online.take(row)]
        self.wh.commit()
        self._take_online_jobs(jobs)
        self._online.published_changed(self.slot)  # what the publication sends now: the follower watches it
        self._capture_unrecorded(self.selection().captured)  # selected, or created unannounced, meanwhile

    def _poll_online(self) -> None:
        """Now and then while streaming: `resync --table` requests, and tables the publication sends
        now that bronze has not seen yet (published by their owner, with no change since)."""
        self._take_online_jobs(self._online.requests(self.slot))
        if self._online.published_changed(self.slot):
            self._capture_unrecorded(resolve(self.config, read_tables(self.src), dict(self._recorded)).captured)

    def _capture_unrecorded(self, captured_tables: list) -> None:
        """Selected tables bronze does not have, whose CREATE the stream does not announce: captured
        from now on, their rows read by an online snapshot."""
        for captured in captured_tables:
            table = captured.table
            announced = self._ddl_trigger and table.oid not in self._uncaptured  # its CREATE is in the stream
            renamed = self._renamed(table) is not None  # known by its relid: its next change records the rename
            if table.ident not in self._recorded and table.persistence == "p" and not announced and not renamed:
                self._recorded[table.ident] = captured.bronze
                self._new[captured.bronze] = table
                self.notify(f"capturing {display(*table.ident)}, new to bronze, into bronze.{captured.bronze}")
                self._online.add(captured.bronze, table,
                                 online_snapshot.chunk_key(table, self.config.options(*table.ident).key),
                                 "selected later" if table.oid in self._uncaptured else "published later")

    def _take_online_jobs(self, jobs: list[tuple]) -> None:
        """Open snapshots the warehouse lists (left unfinished, or asked for by `resync --table`)."""
        for _id, bronze, schema, name, reason, key, last_key, chunks, rows, started in jobs:
            table = self._refresh_catalog().get((schema, name))
            if table is None:
                self.notify(f"{display(schema, name)} is gone from the source: its online snapshot stops")
                continue
            if bronze not in self._recorded_tables and table.ident not in self._recorded:
                self._recorded[table.ident] = bronze  # no row of it is in bronze yet: new to bronze
                self._new[bronze] = table
            self._online.add(bronze, table, tuple(key), reason, after=last_key, chunks=chunks, rows=rows,
                             started=started)

    def resync(self, progress: Callable[[str, int], None] = lambda *_: None) -> int:
        """After a lost slot: a new snapshot into the existing bronze as a new epoch (see
        medallion.bronze.resync). Returns the number of rows the epoch holds."""
        store.ensure_schema(self.wh)
        identity = dict(zip(("system_id", "database", "database_oid", "now"),
                            self.src.execute(sql_text("medallion.bronze", "source_identity.sql")).fetchone()))
        state = store.read_state(self.wh, self.slot)
        self.wh.commit()
        if state is not None and (state.source_system_id, state.source_database_oid) != \
                (identity["system_id"], identity["database_oid"]):
            raise BronzeMismatch(f"bronze was captured from another source database than {identity['database']}: "
                                 "a re-sync cannot continue it; run 'medallion reset'")
        plugin = state.plugin if state is not None else self.plugin
        if plugin == "pgoutput":
            publication.check(self.src, self.slot, self.selection())
        return resync.resync(self.endpoints.source, self.src, self.wh, self.slot, self.config, plugin, identity,
                             progress)

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
            self._check_resumed_selection()
            return 0
        self._check_one_capture(identity)
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
        rows, taken = snapshot.take(self.endpoints.source, self.wh, self.slot, identity, self.config,
                                    self.plugin, progress)
        for note in taken.notes:
            self.notify(note)
        return rows

    def _check_one_capture(self, identity: dict) -> None:
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

    def _check_resumed_selection(self) -> None:
        """Bronze's tables are still selected, and still capturable; say what the selection adds."""
        selection = self.selection()
        for note in selection.notes + checks.identity_problems(selection):
            self._say_once(note)
        if self.plugin == "pgoutput":
            publication.check(self.src, self.slot, selection)
        recorded = store.recorded_tables(self.wh)
        self.wh.commit()
        for table in recorded.values():
            why = selects(self.config, table.schema, table.name)
            if why is not None:  # accepted, and said on every run: a table whose build fails can be left out
                self.notify(excluded_note(self.config, display(table.schema, table.name), why))
        if not self._ddl_trigger:
            self._observe_schemas(selection, recorded)

    def _observe_schemas(self, selection: Selection, recorded: dict[str, store.RecordedTable]) -> None:
        """Without the DDL trigger: a captured table whose catalog differs from bronze's record
        changed while nothing of it streamed by; its schema is recorded now, after everything
        bronze holds (the first moment bronze can know it)."""
        by_ident = {t.ident: t for t in recorded.values()}
        state = store.read_state(self.wh, self.slot)
        observed = []
        for captured in selection.captured:
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

    # -- which bronze table a change lands in ----------------------------------------------------

    def _refresh_catalog(self) -> dict[tuple[str, str], SourceTable]:
        tables = read_tables(self.src)
        self._catalog = {t.ident: t for t in tables}
        self._by_oid = {t.oid: t for t in tables}
        return self._catalog

    def _source_table(self, ref: RelationRef) -> SourceTable | None:
        """The source's table a change names: by OID when the plugin sends one (robust to renames)."""
        if self._catalog is None:
            self._refresh_catalog()
        if ref.oid is not None:
            if ref.oid not in self._by_oid:
                self._refresh_catalog()
            return self._by_oid.get(ref.oid)
        ident = (ref.schema, ref.table)
        if ident not in self._catalog:
            self._refresh_catalog()
        return self._catalog.get(ident)

    def _resolve(self, ref: RelationRef, txn: Transaction | None = None) -> tuple[str, str] | None:
        """The bronze table a change to ref lands in, and the relation's qualified name, or None
        when it is not captured.

        A leaf partition lands in its root's table. A selected table that bronze does not have
        yet was created after capture started: it is captured from its first change on."""
        key = ref.oid if ref.oid is not None else (ref.schema, ref.table)
        if key in self._targets:
            return self._targets[key]
        source = self._source_table(ref)
        ident = (ref.schema, ref.table)
        if source is None and ident in self._recorded:  # dropped since; bronze knows its name
            recorded = self._recorded_tables.get(self._recorded[ident])
            qualified = recorded.qualified if recorded else display(*ident)
            self._targets[key] = (self._recorded[ident], qualified)
            return self._targets[key]
        if source is None:
            if key not in self._warned:
                self._warned.add(key)
                self.notify(f"a change to {display(*ident)}, which is no longer in the source: it cannot be "
                            "traced to a captured table and is skipped")
            self._targets[key] = None
            return None
        catalog = self._catalog or {}
        root = catalog.get(source.root, source)
        target = self._recorded.get(root.ident)
        if target is not None and selects(self.config, *root.ident) is not None:
            self._targets[key] = None  # in bronze, excluded since: captured no more (excluded_note)
            return None
        renamed = self._renamed(root) if target is None and txn is not None else None
        if renamed is not None:  # a change under its new name is the first bronze hears of a rename
            target = self._on_rename(txn, renamed, root)
            if target is None:
                self._left_out[root.oid] = root
        elif target is None and root.persistence == "p" and selects(self.config, *root.ident) is None:
            target = naming.bronze_table(*root.ident)
            if target in set(self._recorded.values()):
                target = naming.fit(f"{target}_{naming.short_hash(root.qualified)}")
            self._recorded[root.ident] = target
            self._recorded_tables[target] = _recorded_from(target, root)
            self._new[target] = root
            self.notify(f"capturing {display(*root.ident)}, new in the source, into bronze.{target}")
            # its rows from before it reached the stream (published or selected later) are read online
            self._online.add(target, root, online_snapshot.chunk_key(root, self.config.options(*root.ident).key),
                             "selected later" if root.oid in self._uncaptured else "published later")
        elif target is None:
            self._left_out[root.oid] = root
        if target is not None and not publication.has_identity(source):
            self._say_once(checks.identity_problem(source) or "")
        self._targets[key] = (target, source.qualified) if target is not None else None
        return self._targets[key]

    # -- stream ------------------------------------------------------------------------------------

    def _stream(self, start_lsn: int) -> ReplicationStream:
        decoder = decoder_for(self.plugin)
        self._decoder = decoder
        return ReplicationStream(self.endpoints.source, self.slot,
                                 decoder.options(publication.publication_name(self.slot),
                                                 self.src.info.server_version), start_lsn)

    def run(self, should_stop: Callable[[], bool], on_batch: Callable[[BatchResult], None],
            until_caught_up: bool) -> None:
        """Stream the slot into bronze until should_stop() says so, or (until_caught_up) until
        everything the source had flushed when this began is in bronze.

        This thread reads and parses; a writer thread writes to the warehouse meanwhile (the
        server decodes, Python parses and the warehouse COPYs at the same time). Positions are
        confirmed to the server from here, once the writer has committed them."""
        state = store.read_state(self.wh, self.slot)
        self.wh.commit()
        assert state is not None, "start() records the state before streaming"
        at, flushed = self.src.execute("select clock_timestamp(), pg_current_wal_flush_lsn()::text").fetchone()
        target = lsn_to_int(flushed)
        probe = {"at": at, "lsn": target, "checked": time.monotonic(), "recorded": False}
        pending: list[Transaction] = []
        pending_bytes = pending_changes = 0
        pending_since = time.monotonic()  # when the oldest pending transaction committed (seen)
        open_txn: Transaction | None = None
        writer = _Writer(self)
        writer.start()
        try:
            with self._stream(lsn_to_int(state.last_commit_lsn)) as stream:
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
                                    writer.submit(("caught_up", probe["at"] - COMMIT_LATENCY_MARGIN))
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
                        kind = event[0]
                        if kind == "X":
                            if open_txn is None:
                                raise SourceNotReady("a row change outside a transaction: is the slot's plugin "
                                                     f"{self.plugin}?")
                            open_txn.ordinal += 1
                            resolved = self._resolve(event[1], open_txn)
                            if resolved is None:
                                continue
                            target_table, source_table = resolved
                            full_row, old_row = event[3], event[4]
                            if event[2] == "U" and (len(event) > 6 or self.plugin == "wal2json"):
                                full_row = self._complete_unchanged(open_txn, pending, writer, target_table, event)
                            if self._online.busy:  # inside a chunk's window, the stream wins
                                self._online.see(open_txn, target_table, event[2], full_row, old_row)
                            target_rows = open_txn.rows.setdefault(target_table, [])
                            target_rows.append((open_txn.ordinal, event[5], event[2], full_row, old_row, source_table))
                            if (tracked := self._partial_updates(target_table)) is not None:
                                open_txn.versions.note(target_table, len(target_rows) - 1, event[2], full_row, tracked)
                            open_txn.in_memory += 1
                            open_txn.changes += 1
                            open_txn.bytes += ROW_OVERHEAD + (len(full_row) if full_row else 0) + \
                                (len(old_row) if old_row else 0)
                            if open_txn.bytes >= self.spill_bytes:
                                writer.submit(("spill", open_txn.xid, open_txn.rows))
                                open_txn.spilled.update(open_txn.rows)
                                open_txn.versions.spill()
                                open_txn.rows, open_txn.in_memory, open_txn.bytes = {}, 0, 0
                        elif kind == "B":
                            open_txn = Transaction(xid=event[1], commit_ts=event[2])
                        elif kind == "C":
                            if open_txn is None:
                                raise SourceNotReady("a commit without its begin in the stream")
                            open_txn.commit_lsn = event[1]
                            open_txn.commit_ts = event[2] if event[2] is not None else open_txn.commit_ts
                            open_txn.redelivered = open_txn.commit_lsn <= lsn_to_int(state.last_commit_lsn)
                            if not pending:
                                pending_since = time.monotonic()
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
                        elif kind == "M":
                            if open_txn is not None and event[1] == ddl.MESSAGE_PREFIX:
                                self._on_ddl(open_txn, ddl.parse_message(event[2]))
                            elif event[1] == online_snapshot.PREFIX:
                                self._online.message(open_txn, event[2], message.data_start)
                        elif kind == "R" and not self._ddl_trigger and open_txn is not None:
                            self._on_relation(open_txn, event[1])
                if pending:
                    self._submit_write(writer, pending)
                writer.finish()
                self._report(writer, stream, on_batch)
        finally:
            writer.stop()

    # -- schema changes ------------------------------------------------------------------------

    def _forget(self, oid: int | None, ident: tuple[str, str] | None) -> None:
        """Drop what is cached about a relation: its next change resolves it afresh."""
        self._catalog = None
        for key in (oid, ident):
            if key is not None:
                self._targets.pop(key, None)

    def _on_ddl(self, txn: Transaction, event: ddl.DdlEvent | None) -> None:
        """A DDL announced by the source's trigger, at its own position in its transaction."""
        if event is None:
            return
        txn.ordinal += 1  # the DDL takes a place in the transaction's order, between its changes
        self._forget(event.oid, (event.schema, event.name) if event.schema else None)
        if event.event == "drop":
            bronze = self._recorded.get((event.schema, event.name))
            recorded = self._recorded_tables.get(bronze) if bronze else None
            if bronze is not None:
                table = recorded.as_source_table() if recorded else None
                if table is not None:
                    txn.schema_events.append((bronze, txn.ordinal, "drop", table, False))
                    self.notify(f"{display(event.schema, event.name)} was dropped in the source: its current "
                                "versions end at the drop")
            return
        table = event.table
        if table is None or table.is_partition:
            return  # a partition's changes land in its root, whose schema a partition does not change
        bronze = self._recorded.get(table.ident)
        renamed = self._renamed(table) if bronze is None else None
        if renamed is not None:
            self._on_rename(txn, renamed, table)
        elif bronze is not None:
            txn.schema_events.append((bronze, txn.ordinal, event.event, table, False))
            self._recorded_tables[bronze] = _recorded_from(bronze, table)
        elif (event.event == "create" or event.published) and table.persistence == "p" \
                and selects(self.config, *table.ident) is None:
            if not publication.has_identity(table):
                # not published (medallion.bronze.publication): its rows are not sent until it has
                # an identity; if it gets one while empty, the trigger publishes it ("published")
                self._left_out[table.oid] = table
                self._uncaptured.add(table.oid)
                self._say_once(checks.identity_problem(table) or "")
                return
            self._uncaptured.discard(table.oid)
            bronze = naming.bronze_table(*table.ident)
            if bronze in set(self._recorded.values()):
                bronze = naming.fit(f"{bronze}_{naming.short_hash(table.qualified)}")
            self._recorded[table.ident] = bronze
            self._recorded_tables[bronze] = _recorded_from(bronze, table)
            txn.schema_events.append((bronze, txn.ordinal, "create", table, True))
            self.notify(f"capturing {display(*table.ident)}, new in the source, into bronze.{bronze}")

    def _on_relation(self, txn: Transaction, relation: object) -> None:
        """Without the DDL trigger: a Relation message whose columns differ from bronze's record
        means the table changed since; its schema is recorded here, at the first change after."""
        source = self._by_oid.get(relation.oid) if self._by_oid else None
        ident = source.root if source is not None else (relation.namespace, relation.name)
        bronze = self._recorded.get(ident)
        recorded = self._recorded_tables.get(bronze) if bronze else None
        if recorded is not None and recorded.relid == relation.oid \
                and recorded.ident != (relation.namespace, relation.name):
            current = read_tables(self.src, relation.oid)
            if current:  # renamed since (the cached catalog still had the old name)
                txn.ordinal += 1
                self._on_rename(txn, bronze, current[0])
                self._forget(relation.oid, ident)
            return
        if recorded is None or tuple(c.name for c in recorded.columns) == tuple(relation.columns):
            return
        current = read_tables(self.src, recorded.relid) if recorded.relid else []
        if not current:
            return
        txn.ordinal += 1
        txn.schema_events.append((bronze, txn.ordinal, "observed", current[0], False))
        self._recorded_tables[bronze] = _recorded_from(bronze, current[0])
        self._forget(relation.oid, ident)
        if bronze not in self._warned and not self.config.accept_no_ddl_trigger:
            self._warned.add(bronze)
            self.notify(f"{recorded.qualified} changed its columns; without the DDL trigger (run 'medallion "
                        "prepare-source' as a superuser) bronze records it at its first change after the ALTER, "
                        "not at the ALTER's own time ([capture] accept_no_ddl_trigger = true stops this note)")

    def _complete_unchanged(self, txn: Transaction, pending: list[Transaction], writer: _Writer, target: str,
                            event: tuple) -> str:
        """An UPDATE's row with its unchanged TOASTed values taken from the row's previous version
        (medallion.bronze.unchanged): newest first, this transaction, the committed transactions not
        yet written, then bronze (once the writer has written everything handed to it)."""
        recorded = self._recorded_tables.get(target)
        if recorded is None or (len(event) <= 6 and recorded.replica_identity == "f"):
            return event[3]  # wal2json under FULL: completed from the old row (medallion.bronze.rows)
        row = orjson.loads(event[3])
        missing = list(event[6]) if len(event) > 6 else unchanged.missing_columns(
            row, [c.name for c in recorded.columns])
        if not missing:
            return event[3]
        key = tuple(recorded.key)
        old_key = orjson.loads(event[4]) if event[4] else None
        wanted = unchanged.key_of(old_key if old_key and all(k in old_key for k in key) else row, key)
        previous = None
        if key:
            for earlier in [txn, *(t for t in reversed(pending) if not t.redelivered)]:
                found, previous = earlier.versions.find(earlier.rows.get(target, []), target, wanted)
                if found:
                    break
                if earlier.versions.maybe_spilled(target, wanted):
                    writer.finish()
                    previous = unchanged.in_spill(self.wh, self.slot, earlier.xid, target, key, wanted)
                    break
            else:
                writer.finish()
                previous = unchanged.in_bronze(self.wh, target, key, wanted)
        if previous is None:
            raise SourceNotReady(
                f"an update of {recorded.qualified} left {missing[0]} unchanged (a large value the WAL does not "
                f"repeat without REPLICA IDENTITY FULL) and bronze has no earlier version of the row "
                f"({', '.join(key) or 'no key'} = {', '.join(map(str, wanted))}): run 'medallion prepare-source' "
                "(REPLICA IDENTITY FULL), then 'medallion resync'")
        return unchanged.complete(row, missing, previous)

    def _partial_updates(self, target: str) -> tuple[str, ...] | None:
        """The key of a captured table whose updates may lack unchanged TOASTed values (not
        REPLICA IDENTITY FULL), or None: only these tables' rows are indexed by key."""
        recorded = self._recorded_tables.get(target)
        if recorded is None or recorded.replica_identity == "f" or not recorded.key:
            return None
        return tuple(recorded.key)

    def _say_once(self, line: str) -> None:
        if line and line not in self._said:
            self._said.add(line)
            self.notify(line)

    def _renamed(self, table: SourceTable) -> str | None:
        """The bronze table of a captured table that bronze knows under another name: a table
        is the same table across ALTER TABLE ... RENAME (and SET SCHEMA) by its relid."""
        if table.oid is None or table.ident in self._recorded:
            return None
        for bronze, recorded in self._recorded_tables.items():
            if recorded.relid == table.oid and recorded.event != "drop" and recorded.ident != table.ident \
                    and self._recorded.get(recorded.ident) == bronze:
                return bronze
        return None

    def _on_rename(self, txn: Transaction, bronze: str, table: SourceTable) -> str | None:
        """A captured table renamed: its history continues in the same bronze table under the new
        name, recorded at this position (silver's names follow the latest record, see
        medallion.silver.renames). A new name the selection leaves out ends the history here, as
        a drop would, said in one line. Returns the bronze table changes now land in, or None."""
        old = self._recorded_tables[bronze]
        self._recorded.pop(old.ident, None)
        for key in (table.oid, old.ident, table.ident):
            self._targets.pop(key, None)
        why = selects(self.config, *table.ident)
        if why is not None:
            txn.schema_events.append((bronze, txn.ordinal, "drop", old.as_source_table(), False))
            self._recorded_tables[bronze] = replace(old, event="drop")
            self.notify(f"{old.qualified} was renamed to {table.qualified}, which {self.config.where} does not "
                        f"select ({why}): its history ends at the rename; to continue it, select "
                        f"{display(*table.ident)} and run 'medallion reset'")
            return None
        self._recorded[table.ident] = bronze
        self._recorded_tables[bronze] = _recorded_from(bronze, table)
        txn.schema_events.append((bronze, txn.ordinal, "rename", table, False))
        self.notify(f"{old.qualified} was renamed to {table.qualified}: its history continues under the new name "
                    f"(bronze.{bronze}; silver's tables take the new name at the next build)")
        return bronze

    def _submit_write(self, writer: _Writer, txns: list[Transaction]) -> None:
        """Hand committed transactions to the writer, with what it must record beside them."""
        targets = {t for txn in txns for t in (*txn.rows, *txn.spilled)}
        new_tables = {t: self._new.pop(t) for t in targets if t in self._new}
        left_out, self._left_out = self._left_out, {}
        writer.submit(("write", txns, new_tables, left_out))

    def _report(self, writer: _Writer, stream: ReplicationStream, on_batch: Callable[[BatchResult], None]) -> None:
        """Results of the batches the writer committed; their positions confirmed to the server."""
        for result in writer.results():
            on_batch(result)
        if writer.committed_lsn:
            stream.confirm(writer.committed_lsn)

    def _spill(self, xid: int | None, rows: dict[str, list[tuple]]) -> None:
        """Park an open transaction's changes in bronze.ingest_spill (its own warehouse transaction)."""
        copy = sql.SQL("copy bronze.ingest_spill ({}) from stdin").format(sql.SQL(SPILL_COLUMNS))
        with self.wh.transaction(), self.wh.cursor().copy(copy) as out:
            for target, target_rows in rows.items():
                for ordinal, lsn, op, full_row, old_row, source_table in target_rows:
                    out.write_row((self.slot, xid, target, ordinal, lsn, op, full_row, old_row, source_table))

    def _caught_up(self, at: datetime) -> None:
        with self.wh.transaction():
            self.wh.execute(sql_text("medallion.bronze", "state_caught_up.sql"), {"at": at, "slot": self.slot})

    def _write(self, txns: list[Transaction], new_tables: dict[str, SourceTable],
               left_out: dict[int, SourceTable]) -> BatchResult:
        """Write committed transactions and the new position in one warehouse transaction."""
        began = time.perf_counter()
        result = BatchResult()
        with self.wh.transaction():
            state = store.read_state(self.wh, self.slot, lock=True)
            assert state is not None, "start() records the state before any batch"
            done = lsn_to_int(state.last_commit_lsn)
            fresh = [t for t in txns if t.commit_lsn > done]
            result.skipped_transactions = len(txns) - len(fresh)
            for table in left_out.values():
                store.record_uncaptured(self.wh, table, txns[-1].commit_lsn)
            if fresh:
                result.changes = self._copy(fresh, new_tables)
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
            for txn in txns:
                if txn.spilled:
                    self.wh.execute("delete from bronze.ingest_spill where slot_name = %s and xid = %s",
                                    [self.slot, txn.xid])
        result.seconds = time.perf_counter() - began
        result.tables = dict(self.copied) if fresh else {}  # by table, for the metrics
        return result

    def _copy(self, txns: list[Transaction], new_tables: dict[str, SourceTable]) -> int:
        """COPY the transactions' changes into their bronze tables, in commit order (self.copied:
        the rows written, by bronze table).

        A table new to bronze gets its change table and its schema record in this same
        transaction, positioned at the first transaction that changed it."""
        self.copied: dict[str, int] = {}
        counts = self.copied
        by_target: dict[str, list[tuple]] = {}
        spilled: list[tuple[Transaction, str]] = []
        registered: set[str] = set()
        total = 0
        for txn in txns:
            for bronze, ordinal, event, table, is_new in txn.schema_events:
                if is_new:
                    store.create_bronze_table(self.wh, bronze)
                    registered.add(bronze)
                store.record_table(self.wh, bronze, table, txn.commit_lsn, txn.commit_ts, ordinal, event)
            for target in sorted({*txn.rows, *txn.spilled}):
                if target in new_tables and target not in registered:
                    # idempotent: a run that crashed after committing it left the same record
                    store.create_bronze_table(self.wh, target)
                    store.record_table(self.wh, target, new_tables[target], txn.commit_lsn, txn.commit_ts)
                    registered.add(target)
                if target in txn.spilled:
                    spilled.append((txn, target))
                bucket = by_target.setdefault(target, [])
                for ordinal, lsn, op, full_row, old_row, source_table in txn.rows.get(target, ()):
                    bucket.append((txn.commit_lsn, ordinal, lsn, txn.xid, op, full_row, old_row, source_table,
                                   txn.commit_ts))
            total += txn.changes
        # spilled rows first: within a transaction they precede those still in memory
        for txn, target in spilled:
            moved = self.wh.execute(sql.SQL(sql_text("medallion.bronze", "spill_move.sql")).format(
                target=sql.Identifier(target)),
                {"commit_lsn": txn.commit_lsn, "commit_ts": txn.commit_ts, "slot": self.slot, "xid": txn.xid,
                 "target_name": target})
            counts[target] = counts.get(target, 0) + max(moved.rowcount, 0)
        for target, rows in sorted(by_target.items()):
            if not rows:
                continue
            counts[target] = counts.get(target, 0) + len(rows)
            copy = sql.SQL("copy {} ({}) from stdin").format(
                sql.Identifier(store.BRONZE_SCHEMA, target), sql.SQL(BRONZE_COLUMNS))
            with self.wh.cursor().copy(copy) as out:
                for row in rows:
                    out.write_row(row)
        return total

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


class _Writer(threading.Thread):
    """The warehouse side of a run: spills and batches, in the order the reader hands them over.

    The queue holds at most two items, so a fast source cannot pile up memory: the reader waits.
    An error stops the writer and is raised in the reader at its next hand-over."""

    def __init__(self, ingester: Ingester) -> None:
        super().__init__(name="medallion-bronze-writer", daemon=True)
        self.ingester = ingester
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._results: queue.Queue = queue.Queue()
        self._outstanding = 0  # items handed over and not yet done
        self._lock = threading.Lock()
        self.committed_lsn = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if self.error is None:
                    if item[0] == "spill":
                        self.ingester._spill(item[1], item[2])
                    elif item[0] == "caught_up":
                        self.ingester._caught_up(item[1])
                    else:
                        txns = item[1]
                        self._results.put(self.ingester._write(txns, item[2], item[3]))
                        self.committed_lsn = txns[-1].commit_lsn
            except BaseException as exc:  # handed to the reader, which raises it
                self.error = exc
            finally:
                with self._lock:
                    self._outstanding -= 1

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, item: tuple) -> None:
        self._raise()
        with self._lock:
            self._outstanding += 1
        while True:
            try:
                self._queue.put(item, timeout=1.0)
                return
            except queue.Full:
                self._raise()

    def idle(self) -> bool:
        self._raise()
        with self._lock:
            return self._outstanding == 0

    def results(self) -> list[BatchResult]:
        self._raise()
        done = []
        while not self._results.empty():
            done.append(self._results.get_nowait())
        return done

    def finish(self) -> None:
        """Wait until everything handed over is written."""
        while not self.idle():
            time.sleep(0.01)

    def stop(self) -> None:
        self._queue.put(None)
        self.join(timeout=60)


def _recorded_from(bronze: str, table: SourceTable) -> store.RecordedTable:
    return store.RecordedTable(bronze=bronze, schema=table.schema, name=table.name, qualified=table.qualified,
                               commit_lsn=0, columns=table.columns, key=table.key,
                               replica_identity=table.replica_identity, relid=table.oid)
