"""Can this source be captured as it is? Each refusal is one line naming the fix."""

from __future__ import annotations

import psycopg
from psycopg import sql

from medallion.errors import SourceNotReady
from medallion.selection import Selection, require_some
from medallion.source.catalog import SourceTable


def check_wal_level(conn: psycopg.Connection) -> None:
    level = conn.execute("show wal_level").fetchone()[0]
    if level != "logical":
        raise SourceNotReady(
            f"the source has wal_level={level}; logical decoding needs wal_level=logical: run "
            "ALTER SYSTEM SET wal_level = logical on the source and restart it"
        )


def identity_problems(selection: Selection) -> list[str]:
    """One line for each captured table or partition without REPLICA IDENTITY FULL.

    FULL is what bronze relies on: a delete then carries the whole old row, an update's
    unchanged TOASTed columns can be filled in from the old row instead of being lost, and a
    table without a primary key can be updated and deleted at all once it is published."""
    return [problem for captured in selection.captured for relation in (captured.table, *captured.partitions)
            if (problem := identity_problem(relation)) is not None]


def identity_problem(relation: SourceTable) -> str | None:
    """identity_problems' line for one relation, or None when it has REPLICA IDENTITY FULL."""
    if relation.replica_identity == "n" or (relation.replica_identity == "d" and not relation.key):
        return (f"table {relation.qualified} has no replica identity (REPLICA IDENTITY "
                f"{'NOTHING' if relation.replica_identity == 'n' else 'DEFAULT without a primary key'}): it is "
                "not published (so the source can still update and delete its rows) and not captured until "
                "it has one: add a primary key, or run 'medallion prepare-source' "
                f"(ALTER TABLE {relation.qualified} REPLICA IDENTITY FULL)")
    if relation.replica_identity != "f":
        identity = {"d": "DEFAULT", "i": "USING INDEX", "n": "NOTHING"}[relation.replica_identity]
        return (f"table {relation.qualified} has REPLICA IDENTITY {identity}; bronze needs FULL so deletes keep "
                "the whole row and unchanged TOASTed values survive updates: run 'medallion prepare-source'")
    return None


def check_tables(selection: Selection) -> None:
    """Refuse to start capturing a selection that is empty or not all REPLICA IDENTITY FULL."""
    require_some(selection)
    problems = identity_problems(selection)
    if problems:
        raise SourceNotReady(problems[0])


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
