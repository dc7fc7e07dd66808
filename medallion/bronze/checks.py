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
    """One line for each captured table or partition without a replica identity.

    A table with a primary key (or an identity index) needs no FULL: a delete carries its key,
    which is all silver needs to end the row's version, and an update's unchanged TOASTed
    values are taken from the row's previous version in bronze (medallion.bronze.unchanged).
    A table without any identity cannot be published without breaking its UPDATEs and DELETEs
    on the source, so it is not captured until it has one."""
    return [problem for captured in selection.captured for relation in (captured.table, *captured.partitions)
            if (problem := identity_problem(relation)) is not None]


def identity_problem(relation: SourceTable) -> str | None:
    """identity_problems' line for one relation, or None when it has a replica identity."""
    if relation.replica_identity == "n" or (relation.replica_identity in ("d", "i") and not relation.key):
        return (f"table {relation.qualified} has no replica identity (REPLICA IDENTITY "
                f"{'NOTHING' if relation.replica_identity == 'n' else 'DEFAULT without a primary key'}): it is "
                "not published (so the source can still update and delete its rows) and not captured until "
                "it has one: add a primary key, or run 'medallion prepare-source' "
                f"(ALTER TABLE {relation.qualified} REPLICA IDENTITY FULL)")
    return None


def check_tables(selection: Selection) -> None:
    """Refuse to start capturing a selection that is empty or has a table without a replica identity."""
    require_some(selection)
    problems = identity_problems(selection)
    if problems:
        raise SourceNotReady(problems[0])


def prepare_source(conn: psycopg.Connection, selection: Selection, full: bool | None = None) -> list[str]:
    """Set REPLICA IDENTITY FULL where capture needs it; returns what changed.

    By default a table with a primary key (or identity index) is left as it is: FULL would make
    the source log the whole old row of every update and delete, for nothing bronze needs. FULL
    is set on a table without any identity, the only way it can be published: its rows are
    then in bronze from the start, and its history is built once its key is configured
    ([tables] key). full=True (or [capture] replica_identity = "full") sets FULL everywhere, as
    medallion did before."""
    require_some(selection)
    everywhere = selection.config.replica_identity == "full" if full is None else full
    changed = []
    for captured in selection.captured:
        for relation in (captured.table, *captured.partitions):
            if relation.replica_identity == "f":
                continue
            if everywhere or identity_problem(relation) is not None:
                conn.execute(sql.SQL("alter table {} replica identity full").format(sql.Identifier(*relation.ident)))
                changed.append(relation.qualified)
    conn.commit()
    return changed
