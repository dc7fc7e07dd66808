"""The initial snapshot: every existing row lands once as an R row, consistent with the stream.

The tables are read in the snapshot that the slot exported at its consistent point, so a
change is either in the snapshot or in the stream, never both and never neither. The selection
is resolved in that same snapshot, from the catalog as it was then.

Parallel, in chunks (medallion.bronze.snapshot_chunks). Each table's heap (each leaf of a
partitioned table) is split into block ranges, read by a TID range scan (cheap, and it needs no
key, so tables without one split too). Several workers (MEDALLION_SNAPSHOT_WORKERS, 2 by
default) each hold a source connection that imported the exported snapshot (SET TRANSACTION
SNAPSHOT: all read the same consistent point) and a warehouse connection of their own, and COPY
chunk after chunk straight from the source into the bronze table. A chunk's rows are numbered
first_ordinal, first_ordinal + 1, ... in block order, first_ordinal being the table's rows in
the chunks before it, counted in the snapshot when the chunks are planned: ordinals are unique
and the same however many workers ran or how the table was cut.

Exactly once across a crash. The plan (every chunk, with its first ordinal and row count), the
bronze tables, their schema records and the ingest state are one warehouse transaction,
committed before any chunk is read; the state's position stays at 0/0 meanwhile, so a build
applies nothing of a half-copied table. A chunk's rows and its record 'copied' are then one
warehouse transaction: a chunk is in bronze once, with its record, or not at all. When every
chunk is copied, the state moves to the consistent point and the stream starts there.

A crash (SIGKILL) part way leaves copied chunks and planned ones. The planned ones can never be
read as of the consistent point again: the exported snapshot died with the replication
connection that created the slot. So a re-run does not read them in a new snapshot (its rows
would be of a later moment than the stream's start, and the changes in between would be
counted twice or lost). It keeps what is done and finishes the rest at a later moment that the
stream itself marks:

- the copied chunks stay: they are the table's rows at the consistent point, and every change
  after it comes from the slot, which has not moved past the consistent point;
- a table with chunks left is handed to the online snapshot (medallion.bronze.online_snapshot):
  watermark-bracketed chunks in key order, interleaved with the stream, correct at any stream
  position. It skips the tuples that still lie in a copied block range of their leaf
  (online_snapshot.copied_rows_filter): such a tuple is the one copied, or a newer version whose
  change the stream brought; so the copied chunks are not read again. A row updated since, whose
  new version moved into a range not copied, is read again: an R row equal to its key's version
  at that point, which silver takes as no change (history.sql), so nothing is counted twice. A
  rewrite of the leaf since the plan (VACUUM FULL, CLUSTER: its file changed) turns the skip off
  for it, for the same reason. A row no chunk copied begins at its online chunk (or its first
  change), and bronze.online_snapshot says from when the table is complete (finished_ts). Keys
  the online snapshot did not find are not ended as gone (every delete since is in the stream);
- a table that cannot be read online (no key, none declared) is copied whole in the plan's own
  transaction, before any chunk: it is in bronze in full or the snapshot never began.

The hand-over is one warehouse transaction (online snapshot requests, chunks marked 'online',
the state moved to the consistent point), made by the next `medallion ingest` or `run` before
it streams; until then `medallion status` names the unfinished snapshot. A crash before the
plan committed leaves nothing but the slot, which the next run drops and creates anew.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone

import psycopg
from psycopg import sql

from medallion.bronze import slot as slots
from medallion.bronze import snapshot_chunks as chunks
from medallion.bronze import store
from medallion.bronze.decoders import lsn_to_int
from medallion.bronze.destination import Destination
from medallion.bronze.value_forms import row_values
from medallion.config import ProjectConfig
from medallion.db import connect, sql_text
from medallion.selection import CapturedTable, Selection, require_some, resolve
from medallion.source.catalog import read_tables

WORKERS = 2
WORKERS_ENV = "MEDALLION_SNAPSHOT_WORKERS"


def copy_table(src: psycopg.Connection, destination: Destination, captured: CapturedTable, lsn: int,
               first_ordinal: int, ts: object, plugin: str, loaded: datetime) -> int:
    """Stream one whole table's rows from the source snapshot into its bronze table in one COPY
    (a re-sync's epoch, a table the initial snapshot cannot leave to an online snapshot); returns rows."""
    table = captured.table
    # the declared type decides the JSON form, as in wal2json (a domain over integer is text)
    columns = [(c.name, c.type) for c in table.columns]
    select = sql.SQL(  # destination.SNAPSHOT_COLUMNS, in order
        "select {lsn}::bigint, {first} + row_number() over (), {lsn}::bigint, null::bigint, 'R', "
        "row_to_json(v.*), format('%I.%I', n.nspname, c.relname), {ts}::timestamptz, {loaded}::timestamptz "
        "from {source} as t cross join lateral (select {values}) as v join pg_class as c on c.oid = t.tableoid "
        "join pg_namespace as n on n.oid = c.relnamespace"
    ).format(lsn=sql.Literal(lsn), first=sql.Literal(first_ordinal - 1), values=row_values(columns, plugin),
             ts=sql.Literal(ts), loaded=sql.Literal(loaded), source=sql.Identifier(*table.ident))
    with src.cursor() as scur, scur.copy(sql.SQL("copy ({}) to stdout").format(select)) as out:
        return destination.snapshot_rows(captured.bronze, out)


def chunk_select(chunk: chunks.Chunk, columns: list[tuple[str, str]], lsn: int, ts: object,
                 plugin: str, loaded: datetime) -> sql.Composable:
    """The COPY query of one chunk (snapshot_chunk_select.sql)."""
    return sql.SQL(sql_text("medallion.bronze", "snapshot_chunk_select.sql")).format(
        lsn=sql.Literal(lsn), first=sql.Literal(chunk.first_ordinal - 1), source_table=sql.Literal(chunk.source_table),
        ts=sql.Literal(ts), loaded=sql.Literal(loaded), relation=chunk.relation(), values=row_values(columns, plugin), range=chunk.range())


def workers_wanted() -> int:
    """MEDALLION_SNAPSHOT_WORKERS, else WORKERS: source and warehouse connections reading at once."""
    return max(1, int(os.environ.get(WORKERS_ENV) or WORKERS))


def take(source_dsn: str, wh: psycopg.Connection, destination: Destination, slot: str, identity: dict,
         config: ProjectConfig, plugin: str, progress: Callable[[str, int], None] = lambda *_: None,
         warehouse_dsn: str | None = None, workers: int | None = None,
         notify: Callable[[str], None] = lambda _: None) -> tuple[int, Selection]:
    """Create the slot, copy every selected table as of its consistent point, record the state.

    Returns the number of snapshot rows and the selection as resolved in the snapshot. See the
    module's docstring for what a crash leaves; without warehouse_dsn, one worker writes through
    `destination`'s connection."""
    started = datetime.now(timezone.utc)
    snapshot_ts = identity["now"]  # read before the slot existed: no streamed commit is earlier
    with slots.ExportedSnapshotSlot(source_dsn, slot, plugin) as created:
        lsn = lsn_to_int(created.consistent_lsn)
        with connect(source_dsn, "source") as src:
            src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            src.read_only = True
            src.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(created.snapshot_name)))
            tables = read_tables(src)
            selection = resolve(config, tables)
            require_some(selection)
            chunks.ensure_schema(wh)
            # the snapshot's rows are known from when its plan commits (this transaction's start),
            # all of them at once, as when one transaction held the whole snapshot
            loaded = wh.execute("select now()").fetchone()[0]
            whole = 0  # rows of tables copied whole, in this transaction
            planned: list[list[chunks.Chunk]] = []  # by table
            for captured in selection.captured:
                store.create_bronze_table(wh, captured.bronze)
                store.record_table(wh, captured.bronze, captured.table, lsn, snapshot_ts)
                if captured.key:
                    table_chunks = chunks.plan(src, captured)
                    planned.append(table_chunks)
                    if not table_chunks:
                        progress(captured.name, 0)
                else:  # no online snapshot could finish it: whole, or not begun
                    rows = copy_table(src, destination, captured, lsn, 1, snapshot_ts, plugin, loaded)
                    whole += rows
                    progress(captured.name, rows)
            captured_roots = {c.table.ident for c in selection.captured}
            for table in tables:
                if not table.is_partition and table.ident not in captured_roots:
                    store.record_uncaptured(wh, table, lsn)
            # the largest tables first: the workers end together, not one on a large table alone
            planned_chunks = [c for table_chunks in sorted(planned, key=lambda cs: -sum(c.rows for c in cs))
                              for c in table_chunks]
            chunks.record_plan(wh, slot, planned_chunks, created.consistent_lsn)
            wh.execute(sql_text("medallion.bronze", "state_insert.sql"), {
                "slot": slot, "system_id": identity["system_id"], "database": identity["database"],
                "database_oid": identity["database_oid"], "lsn": created.consistent_lsn,
                "ts": snapshot_ts, "changes": whole, "plugin": plugin})
            wh.execute(sql_text("medallion.bronze", "snapshot_state_open.sql"), {"slot": slot})
            wh.commit()
            columns = {c.bronze: [(col.name, col.type) for col in c.table.columns] for c in selection.captured}

            def select(chunk: chunks.Chunk) -> sql.Composable:
                return chunk_select(chunk, columns[chunk.bronze], lsn, snapshot_ts, plugin, loaded)

            copier = chunks.Copier(source_dsn, warehouse_dsn, wh, destination, slot, created.snapshot_name, select,
                                   progress, notify)
            copied = copier.run(planned_chunks, workers or workers_wanted())
        total = whole + copied
        finish(wh, slot, created.consistent_lsn, total, started)
    return total, selection


def finish(wh: psycopg.Connection, slot: str, lsn: str, rows: int, started: datetime) -> None:
    """Bronze is complete to the consistent point: the stream starts there (one transaction)."""
    wh.execute(sql_text("medallion.bronze", "snapshot_state_finish.sql"), {"slot": slot})
    wh.execute(sql_text("medallion.bronze", "log_insert.sql"), {
        "slot": slot, "kind": "snapshot", "first_lsn": lsn, "last_lsn": lsn, "transactions": 1, "changes": rows,
        "started_at": started})
    wh.commit()

