"""The publication that decides what pgoutput sends: created by `medallion prepare-source`.

One publication per pipeline, named after its slot. Where the role may (a superuser on
PostgreSQL 15+), it publishes whole schemas (FOR TABLES IN SCHEMA): a table created later in
them is sent from its first row, which is what capturing new tables of the selection needs.
Otherwise it lists the selected tables (FOR TABLE), and a new table must be added by running
prepare-source again before it gets rows. The ingester still filters by the selection.

publish_via_partition_root stays false, on purpose: with true, PostgreSQL 15 does not send a
TRUNCATE of a single partition at all (measured), and bronze would miss it. Partitions are
sent under their own names and mapped to their root, as for wal2json.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from medallion.db import sql_text
from medallion.errors import SourceNotReady
from medallion.selection import Selection


def publication_name(slot: str) -> str:
    return slot


def _schema_wide(conn: psycopg.Connection) -> bool:
    superuser = conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]
    return bool(superuser) and conn.info.server_version >= 150000


def ensure(conn: psycopg.Connection, slot: str, selection: Selection) -> str:
    """Create or update the pipeline's publication for the selection; returns what it publishes."""
    name = sql.Identifier(publication_name(slot))
    exists = conn.execute("select 1 from pg_publication where pubname = %s", [publication_name(slot)]).fetchone()
    if _schema_wide(conn):
        schemas = sorted({c.table.schema for c in selection.captured})
        target = sql.SQL("tables in schema {}").format(sql.SQL(", ").join(sql.Identifier(s) for s in schemas))
        what = f"every table of schema {', '.join(schemas)}"
    else:
        tables = [c.table.ident for c in selection.captured]
        target = sql.SQL("table {}").format(sql.SQL(", ").join(sql.Identifier(*t) for t in tables))
        what = f"{len(tables)} tables"
    if exists:
        conn.execute(sql.SQL("alter publication {} set {}").format(name, target))
    else:
        conn.execute(sql.SQL("create publication {} for {} with (publish_via_partition_root = false)")
                     .format(name, target))
    conn.commit()
    return what


def unpublished(conn: psycopg.Connection, slot: str, selection: Selection) -> list[str] | None:
    """The selected tables (and partitions) the publication does not send, by qualified name;
    None when there is no publication at all. A table created after `prepare-source` on a source
    whose publication lists tables (no superuser) is one: its rows would never arrive."""
    publication = publication_name(slot)
    if not conn.execute("select 1 from pg_publication where pubname = %s", [publication]).fetchone():
        return None
    published = set(conn.execute(sql_text("medallion.bronze", "published_tables.sql"),
                                 {"publication": publication}).fetchall())
    return [relation.qualified for captured in selection.captured
            for relation in (captured.table, *captured.partitions)
            if relation.relkind == "r" and relation.ident not in published]


def unpublished_message(slot: str, missing: list[str] | None) -> str:
    """One line naming what is not published and the command that fixes it."""
    publication = publication_name(slot)
    if missing is None:
        return f"the source has no publication {publication} for pgoutput: run 'medallion prepare-source'"
    return f"publication {publication} does not send {', '.join(missing)}: run 'medallion prepare-source'"


def check(conn: psycopg.Connection, slot: str, selection: Selection) -> None:
    """The publication exists and sends every selected table (and its partitions)."""
    missing = unpublished(conn, slot, selection)
    if missing is None or missing:
        raise SourceNotReady(unpublished_message(slot, missing[:1] if missing else None))
