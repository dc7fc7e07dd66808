"""Schema changes in the source, announced where they happen.

`medallion prepare-source` installs an event trigger on the source that writes, for every DDL
on a table, a transactional logical message into the WAL: the ALTER's own position and commit
time, with the table's schema right after it (or the drop). Both plugins deliver those
messages in the transaction that made them, so bronze records each schema change at exactly
the point in the change stream where it took effect. Without the trigger (a role that is not a
superuser), the ingester still notices a change, later: at the first change after it (pgoutput's
Relation messages) or at its next start (a catalog check), and says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import psycopg

from medallion.db import sql_text
from medallion.errors import SourceNotReady
from medallion.source.catalog import SourceTable, table_from_json

MESSAGE_PREFIX = "medallion.ddl"


@dataclass(frozen=True)
class DdlEvent:
    event: str  # create, alter or drop
    command: str  # the command tag, e.g. ALTER TABLE
    table: SourceTable | None  # the schema after a create or alter
    oid: int | None = None  # a drop: which table
    schema: str | None = None
    name: str | None = None
    published: bool = False  # the trigger added the (empty) table to the publication just now


def parse_message(content: bytes | str) -> DdlEvent | None:
    """A 'medallion.ddl' message's content -> the event (None for a table the trigger skipped)."""
    data = json.loads(content)
    if data["event"] == "drop":
        return DdlEvent("drop", data.get("command", "DROP TABLE"), None, int(data["oid"]), data["schema"],
                        data["name"])
    if not data.get("table"):
        return None
    table = table_from_json(data["table"])
    return DdlEvent(data["event"], data.get("command", ""), table, table.oid, table.schema, table.name,
                    published=bool(data.get("published")))


def trigger_sql() -> str:
    """The trigger's SQL with the discovery query inlined as medallion.relation_schema(relid)."""
    catalog = sql_text("medallion.source", "catalog_tables.sql")
    body = re.sub(r"^--.*$", "", catalog, flags=re.M).replace("%(relid)s", "relid").replace("%%", "%")
    return sql_text("medallion.bronze", "ddl_trigger.sql").replace("/* discovery */", body.strip())


def can_install(conn: psycopg.Connection) -> bool:
    return bool(conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0])


def install(conn: psycopg.Connection) -> None:
    try:
        conn.execute(trigger_sql())
        conn.commit()
    except psycopg.Error as exc:
        conn.rollback()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceNotReady(f"cannot install the DDL trigger on the source: {reason}") from None


def installed(conn: psycopg.Connection) -> bool:
    return conn.execute("select count(*) = 2 from pg_event_trigger where evtname in "
                        "('medallion_ddl_end', 'medallion_ddl_drop') and evtenabled <> 'D'").fetchone()[0]
