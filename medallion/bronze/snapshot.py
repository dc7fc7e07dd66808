"""The initial snapshot: every existing row lands once as an R row, consistent with the stream.

The tables are read in the snapshot that the slot exported at its consistent point, so a
change is either in the snapshot or in the stream, never both and never neither. The selection
is resolved in that same snapshot, from the catalog as it was then. All of it is written in
one warehouse transaction together with the ingest state and the tables' recorded schemas: a
crash leaves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import psycopg
from psycopg import sql

from medallion.bronze import slot as slots
from medallion.bronze import store
from medallion.bronze.decoders import lsn_to_int
from medallion.bronze.destination import Destination
from medallion.config import ProjectConfig
from medallion.db import connect, sql_text
from medallion.selection import CapturedTable, Selection, require_some, resolve
from medallion.source.catalog import read_tables

# Snapshot rows take the stream's value forms, so R and I rows of the same values look alike.
# pgoutput sends every value as its type's text output. wal2json writes these types as JSON
# numbers (booleans as true/false, bytea as bare hex), everything else as the text output.
NUMBER_TYPES = {"smallint", "integer", "bigint", "oid", "real", "double precision"}
BOOL_TYPE = "boolean"
_PAIRS_PER_CALL = 50  # jsonb_build_object takes at most 100 arguments


def _value_expr(column: str, declared_type: str, plugin: str) -> sql.Composable:
    ident = sql.Identifier(column)
    if plugin == "pgoutput":
        # the type's output function, as pgoutput sends it (a cast to text can differ: 'true' for t)
        return sql.SQL("to_jsonb(case when {c} is null then null else format('%s', {c}) end)").format(c=ident)
    base = declared_type.split("(")[0]
    if base in NUMBER_TYPES or base == "numeric":
        # NaN and infinities are not JSON numbers: wal2json writes null for them.
        return sql.SQL("case when {c}::text in ('NaN', 'Infinity', '-Infinity') then null "
                       "else to_jsonb({c}) end").format(c=ident)
    if declared_type == BOOL_TYPE:
        return sql.SQL("to_jsonb({})").format(ident)
    if declared_type == "bytea":
        return sql.SQL("to_jsonb(encode({}, 'hex'))").format(ident)
    return sql.SQL("to_jsonb({}::text)").format(ident)


def row_json_expr(columns: list[tuple[str, str]], plugin: str) -> sql.Composable:
    """A jsonb {column: value} of the current row, in the plugin's value forms."""
    calls = []
    for start in range(0, len(columns), _PAIRS_PER_CALL):
        pairs = [sql.SQL("{}, {}").format(sql.Literal(name), _value_expr(name, type_, plugin))
                 for name, type_ in columns[start:start + _PAIRS_PER_CALL]]
        calls.append(sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs)))
    return sql.SQL(" || ").join(calls) if calls else sql.SQL("'{}'::jsonb")


def copy_table(src: psycopg.Connection, destination: Destination, captured: CapturedTable, lsn: int,
               first_ordinal: int, ts: object, plugin: str) -> int:
    """Stream one table's rows from the source snapshot into its bronze table; returns rows."""
    table = captured.table
    # the declared type decides the JSON form, as in wal2json (a domain over integer is text)
    columns = [(c.name, c.type) for c in table.columns]
    select = sql.SQL(  # destination.SNAPSHOT_COLUMNS, in order
        "select {lsn}::bigint, {first} + row_number() over (), {lsn}::bigint, null::bigint, 'R', "
        "{row}, format('%I.%I', n.nspname, c.relname), {ts}::timestamptz "
        "from {source} as t join pg_class as c on c.oid = t.tableoid "
        "join pg_namespace as n on n.oid = c.relnamespace"
    ).format(lsn=sql.Literal(lsn), first=sql.Literal(first_ordinal - 1), row=row_json_expr(columns, plugin),
             ts=sql.Literal(ts), source=sql.Identifier(*table.ident))
    with src.cursor() as scur, scur.copy(sql.SQL("copy ({}) to stdout").format(select)) as out:
        return destination.snapshot_rows(captured.bronze, out)


def take(source_dsn: str, wh: psycopg.Connection, destination: Destination, slot: str, identity: dict,
         config: ProjectConfig, plugin: str, progress: Callable[[str, int], None] = lambda *_: None) -> tuple[int, Selection]:
    """Create the slot, copy every selected table as of its consistent point, record the state.

    Returns the number of snapshot rows and the selection as resolved in the snapshot. Nothing
    is committed to the warehouse unless all of it is: a failure leaves an unused slot, which
    the next attempt drops and creates anew."""
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
            total = 0
            for captured in selection.captured:
                store.create_bronze_table(wh, captured.bronze)
                store.record_table(wh, captured.bronze, captured.table, lsn, snapshot_ts)
                rows = copy_table(src, destination, captured, lsn, total + 1, snapshot_ts, plugin)
                total += rows
                progress(captured.name, rows)
            captured_roots = {c.table.ident for c in selection.captured}
            for table in tables:
                if not table.is_partition and table.ident not in captured_roots:
                    store.record_uncaptured(wh, table, lsn)
        wh.execute(sql_text("medallion.bronze", "state_insert.sql"), {
            "slot": slot, "system_id": identity["system_id"], "database": identity["database"],
            "database_oid": identity["database_oid"], "lsn": created.consistent_lsn,
            "ts": snapshot_ts, "changes": total, "plugin": plugin})
        wh.execute(sql_text("medallion.bronze", "log_insert.sql"), {
            "slot": slot, "kind": "snapshot", "first_lsn": created.consistent_lsn,
            "last_lsn": created.consistent_lsn, "transactions": 1, "changes": total,
            "started_at": started})
        wh.commit()
    return total, selection
