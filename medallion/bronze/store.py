"""The warehouse side of bronze: its tables, the ingest state and the log of batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from medallion.bronze.tables import BRONZE_SCHEMA, CAPTURED_TABLES, bronze_table
from medallion.db import sql_text


@dataclass(frozen=True)
class State:
    slot: str
    source_system_id: str
    source_database: str
    source_database_oid: int
    snapshot_lsn: str
    last_commit_lsn: str
    last_commit_ts: datetime | None
    changes_total: int


def ensure_schema(conn: psycopg.Connection, tables: tuple[str, ...] = CAPTURED_TABLES) -> None:
    """Create the bronze schema and one br_<table>_cdc per captured table (idempotent)."""
    conn.execute(sql_text("medallion.bronze", "schema.sql"))
    template = sql.SQL(sql_text("medallion.bronze", "bronze_table.sql"))
    for table in tables:
        name = bronze_table(table)
        conn.execute(template.format(
            table=sql.Identifier(name),
            pkey=sql.Identifier(f"{name}_pkey"),
            append_only=sql.Identifier(f"{name}_append_only"),
        ))
    conn.commit()


def read_state(conn: psycopg.Connection, slot: str, lock: bool = False) -> State | None:
    query = (
        "select slot_name, source_system_id, source_database, source_database_oid::int, "
        "snapshot_lsn::text, last_commit_lsn::text, last_commit_ts, changes_total "
        "from bronze.ingest_state where slot_name = %s"
    )
    row = conn.execute(query + (" for update" if lock else ""), [slot]).fetchone()
    return State(*row) if row else None


def row_counts(conn: psycopg.Connection, tables: tuple[str, ...] = CAPTURED_TABLES) -> dict[str, int]:
    counts = {}
    for table in tables:
        query = sql.SQL("select count(*) from {}.{}").format(
            sql.Identifier(BRONZE_SCHEMA), sql.Identifier(bronze_table(table)))
        counts[bronze_table(table)] = conn.execute(query).fetchone()[0]
    return counts
