"""Can this source be captured as it is? Each refusal is one line naming the fix."""

from __future__ import annotations

import psycopg
from psycopg import sql

from medallion.errors import SourceNotReady
from medallion.selection import Selection, require_some


def check_wal_level(conn: psycopg.Connection) -> None:
    level = conn.execute("show wal_level").fetchone()[0]
    if level != "logical":
        raise SourceNotReady(
            f"the source has wal_level={level}; logical decoding needs wal_level=logical: run "
            "ALTER SYSTEM SET wal_level = logical on the source and restart it"
        )


def check_tables(selection: Selection) -> None:
    """Every captured table and partition has REPLICA IDENTITY FULL.

    FULL is what bronze relies on: a delete then carries the whole old row, an update's
    unchanged TOASTed columns can be filled in from the old row instead of being lost, and a
    table without a primary key can be updated and deleted at all once it is published."""
    require_some(selection)
    for captured in selection.captured:
        for relation in (captured.table, *captured.partitions):
            if relation.replica_identity == "f":
                continue
            identity = {"d": "DEFAULT", "i": "USING INDEX", "n": "NOTHING"}[relation.replica_identity]
            raise SourceNotReady(
                f"table {relation.qualified} has REPLICA IDENTITY {identity}; bronze needs FULL so deletes keep "
                "the whole row and unchanged TOASTed values survive updates: run 'medallion prepare-source'")


def prepare_source(conn: psycopg.Connection, selection: Selection) -> list[str]:
    """Set REPLICA IDENTITY FULL on every captured table and its partitions; returns what changed."""
    require_some(selection)
    changed = []
    for captured in selection.captured:
        for relation in (captured.table, *captured.partitions):
            if relation.replica_identity != "f":
                conn.execute(sql.SQL("alter table {} replica identity full").format(sql.Identifier(*relation.ident)))
                changed.append(relation.qualified)
    conn.commit()
    return changed
