"""The initial snapshot: every existing row lands once as an R row, consistent with the stream.

The tables are read in the snapshot that the slot exported at its consistent point, so a
change is either in the snapshot or in the stream, never both and never neither. All of it is
written in one warehouse transaction together with the ingest state: a crash leaves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import psycopg
from psycopg import sql

from medallion.bronze import slot as slots
from medallion.bronze.decode import lsn_to_int
from medallion.bronze.tables import CAPTURED_TABLES, SOURCE_SCHEMA, bronze_table
from medallion.db import connect, sql_text

# wal2json writes these types as JSON numbers (booleans as true/false), everything else as
# the type's text output. Snapshot rows follow the same rules so R and I rows look alike.
NUMBER_TYPES = {20, 21, 23, 26, 700, 701, 1700}  # int8 int2 int4 oid float4 float8 numeric
BOOL_TYPE = 16
_PAIRS_PER_CALL = 50  # jsonb_build_object takes at most 100 arguments


def _value_expr(column: str, type_oid: int) -> sql.Composable:
    ident = sql.Identifier(column)
    if type_oid in NUMBER_TYPES:
        # NaN and infinities are not JSON numbers: wal2json writes null for them.
        return sql.SQL("case when {c}::text in ('NaN', 'Infinity', '-Infinity') then null "
                       "else to_jsonb({c}) end").format(c=ident)
    if type_oid == BOOL_TYPE:
        return sql.SQL("to_jsonb({})").format(ident)
    return sql.SQL("to_jsonb({}::text)").format(ident)


def row_json_expr(columns: list[tuple[str, int]]) -> sql.Composable:
    """A jsonb {column: value} of the current row, in wal2json's value forms."""
    calls = []
    for start in range(0, len(columns), _PAIRS_PER_CALL):
        pairs = [sql.SQL("{}, {}").format(sql.Literal(name), _value_expr(name, oid))
                 for name, oid in columns[start:start + _PAIRS_PER_CALL]]
        calls.append(sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs)))
    return sql.SQL(" || ").join(calls)


def copy_table(src: psycopg.Connection, wh: psycopg.Connection, table: str, lsn: int,
               first_ordinal: int, ts: object) -> int:
    """Stream one table's rows from the source snapshot into its bronze table; returns rows."""
    columns = [(name, oid) for name, _, oid in src.execute(
        sql_text("medallion.bronze", "table_columns.sql"),
        {"schema": SOURCE_SCHEMA, "table": table}).fetchall()]
    select = sql.SQL(
        "select {lsn}::bigint, {first} + row_number() over (), {lsn}::bigint, null::bigint, 'R', "
        "{row}, format('%I.%I', {schema}::text, c.relname), {ts}::timestamptz "
        "from {source} as t join pg_class as c on c.oid = t.tableoid"
    ).format(lsn=sql.Literal(lsn), first=sql.Literal(first_ordinal - 1), row=row_json_expr(columns),
             schema=sql.Literal(SOURCE_SCHEMA), ts=sql.Literal(ts),
             source=sql.Identifier(SOURCE_SCHEMA, table))
    copy_in = sql.SQL(
        "copy {} (commit_lsn, ordinal, lsn, xid, op, full_row, source_table, commit_ts) from stdin"
    ).format(sql.Identifier("bronze", bronze_table(table)))
    with src.cursor() as scur, wh.cursor() as wcur:
        with scur.copy(sql.SQL("copy ({}) to stdout").format(select)) as out, wcur.copy(copy_in) as inp:
            for block in out:
                inp.write(block)
        return wcur.rowcount


def take(source_dsn: str, wh: psycopg.Connection, slot: str, identity: dict,
         progress: Callable[[str, int], None] = lambda *_: None) -> int:
    """Create the slot, copy every captured table as of its consistent point, record the state.

    Returns the number of snapshot rows. Nothing is committed to the warehouse unless all of
    it is: a failure leaves an unused slot, which the next attempt drops and creates anew."""
    started = datetime.now(timezone.utc)
    snapshot_ts = identity["now"]  # read before the slot existed: no streamed commit is earlier
    with slots.ExportedSnapshotSlot(source_dsn, slot) as created:
        lsn = lsn_to_int(created.consistent_lsn)
        with connect(source_dsn, "source") as src:
            src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            src.read_only = True
            src.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(created.snapshot_name)))
            total = 0
            for table in CAPTURED_TABLES:
                rows = copy_table(src, wh, table, lsn, total + 1, snapshot_ts)
                total += rows
                progress(table, rows)
        wh.execute(sql_text("medallion.bronze", "state_insert.sql"), {
            "slot": slot, "system_id": identity["system_id"], "database": identity["database"],
            "database_oid": identity["database_oid"], "lsn": created.consistent_lsn,
            "ts": snapshot_ts, "changes": total})
        wh.execute(sql_text("medallion.bronze", "log_insert.sql"), {
            "slot": slot, "kind": "snapshot", "first_lsn": created.consistent_lsn,
            "last_lsn": created.consistent_lsn, "transactions": 1, "changes": total,
            "started_at": started})
        wh.commit()
    return total
