"""The publication that decides what pgoutput sends: created by `medallion prepare-source`.

One publication per pipeline, named after its slot. It lists tables, never whole schemas (FOR
TABLES IN SCHEMA): PostgreSQL refuses UPDATE and DELETE on a published table without a replica
identity, so a schema-wide publication lets any table created later without a primary key break
the source application. Only tables with an identity (a primary key, an identity index, or FULL)
are published; one without is said in one line (medallion.bronze.checks) until it has one. Where
the DDL trigger is installed (a superuser), a table created later in a captured schema joins the
publication by itself while still empty (medallion.publish_if_ready in ddl_trigger.sql), so it
is sent from its first row; otherwise `medallion prepare-source` adds it. The ingester still
filters by the selection.

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
from medallion.source.catalog import SourceTable


def has_identity(table: SourceTable) -> bool:
    """Whether PostgreSQL lets the table be updated and deleted from once it is published."""
    return table.replica_identity == "f" or (table.replica_identity in ("d", "i") and bool(table.key))


def publication_name(slot: str) -> str:
    return slot


def ensure(conn: psycopg.Connection, slot: str, selection: Selection) -> str:
    """Create or update the pipeline's publication for the selected tables that have a replica
    identity; returns what it publishes."""
    name = sql.Identifier(publication_name(slot))
    exists = conn.execute("select 1 from pg_publication where pubname = %s", [publication_name(slot)]).fetchone()
    tables = [c.table.ident for c in selection.captured if has_identity(c.table)]
    if tables:
        target = sql.SQL("table {}").format(sql.SQL(", ").join(sql.Identifier(*t) for t in tables))
    elif exists:  # nothing to send yet: an empty publication (SET needs a list)
        conn.execute(sql.SQL("drop publication {}").format(name))
        exists = None
    if exists:
        conn.execute(sql.SQL("alter publication {} set {}").format(name, target))
    elif tables:
        conn.execute(sql.SQL("create publication {} for {} with (publish_via_partition_root = false)")
                     .format(name, target))
    else:
        conn.execute(sql.SQL("create publication {} with (publish_via_partition_root = false)").format(name))
    conn.commit()
    return f"{len(tables)} tables"


def remember_schemas(conn: psycopg.Connection, slot: str, selection: Selection) -> None:
    """Tell the DDL trigger which schemas' new tables join this publication (it is installed)."""
    schemas = sorted({c.table.schema for c in selection.captured})
    publication = publication_name(slot)
    conn.execute("delete from medallion.publication_schema where pubname = %s", [publication])
    for schema in schemas:
        conn.execute("insert into medallion.publication_schema (pubname, schema_name) values (%s, %s)",
                     [publication, schema])
    conn.commit()


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
    """The publication exists and sends every selected table (and its partitions) that has an
    identity. One without is left out on purpose (checks.identity_problems says so, status names
    it): ingest goes on for the rest."""
    missing = unpublished(conn, slot, selection)
    if missing is None:
        raise SourceNotReady(unpublished_message(slot, None))
    by_name = {relation.qualified: relation for captured in selection.captured
               for relation in (captured.table, *captured.partitions)}
    blocking = [name for name in missing if has_identity(by_name[name])]
    if blocking:
        raise SourceNotReady(unpublished_message(slot, blocking[:1]))
