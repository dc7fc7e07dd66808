"""Can this source be captured as it is? Each refusal is one line naming the fix."""

from __future__ import annotations

import psycopg
from psycopg import sql

from medallion.bronze.tables import CAPTURED_TABLES, SOURCE_SCHEMA
from medallion.db import sql_text
from medallion.errors import SourceNotReady


def check_wal_level(conn: psycopg.Connection) -> None:
    level = conn.execute("show wal_level").fetchone()[0]
    if level != "logical":
        raise SourceNotReady(
            f"the source has wal_level={level}; logical decoding needs wal_level=logical: run "
            "ALTER SYSTEM SET wal_level = logical on the source and restart it"
        )


def check_tables(conn: psycopg.Connection, tables: tuple[str, ...] = CAPTURED_TABLES) -> None:
    """Every captured table exists and has REPLICA IDENTITY FULL (partitions included).

    FULL is what bronze relies on: a delete then carries the whole old row, and an update's
    unchanged TOASTed columns can be filled in from the old row instead of being lost."""
    rows = conn.execute(sql_text("medallion.bronze", "source_tables.sql"),
                        {"schema": SOURCE_SCHEMA, "tables": list(tables)}).fetchall()
    found = {row[0]: row for row in rows}
    missing = [t for t in tables if t not in found]
    if missing:
        raise SourceNotReady(
            f"captured table {SOURCE_SCHEMA}.{missing[0]} does not exist in the source: load it "
            "(medallion load-pagila) or point MEDALLION_SOURCE_DSN at the right database"
        )
    for table in tables:
        _, relkind, ident, has_pkey, partitions = found[table]
        name = f"{SOURCE_SCHEMA}.{table}"
        if ident == "n" or (ident == "d" and not has_pkey):
            raise SourceNotReady(
                f"table {name} has no primary key and no replica identity, so its updates and deletes "
                f"cannot be captured: run 'medallion prepare-source' (ALTER TABLE {name} REPLICA IDENTITY FULL)"
            )
        if ident != "f" or partitions:
            where = name if ident != "f" else partitions[0]
            raise SourceNotReady(
                f"table {where} has REPLICA IDENTITY {'DEFAULT' if ident == 'd' else 'INDEX'}; bronze needs FULL "
                "so deletes keep the whole row and unchanged TOASTed values survive updates: "
                "run 'medallion prepare-source'"
            )


def prepare_source(conn: psycopg.Connection, tables: tuple[str, ...] = CAPTURED_TABLES) -> list[str]:
    """Set REPLICA IDENTITY FULL on every captured table and its partitions; returns what changed."""
    changed = []
    rows = conn.execute(sql_text("medallion.bronze", "captured_relations.sql"),
                        {"schema": SOURCE_SCHEMA, "tables": list(tables)}).fetchall()
    for schema, table, ident in rows:
        if ident != "f":
            target = sql.Identifier(schema, table)
            conn.execute(sql.SQL("alter table {} replica identity full").format(target))
            changed.append(f"{schema}.{table}")
    conn.commit()
    return changed
