"""The warehouse side of bronze: its tables, the schema record, the ingest state and the batch log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from medallion.db import sql_text
from medallion.naming import object_prefix
from medallion.source.catalog import Column, SourceTable

BRONZE_SCHEMA = "bronze"


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
    plugin: str


@dataclass(frozen=True)
class RecordedTable:
    """A captured table as bronze last recorded it."""

    bronze: str
    schema: str
    name: str
    qualified: str
    commit_lsn: int
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    replica_identity: str
    event: str = "snapshot"
    relid: int | None = None

    @property
    def ident(self) -> tuple[str, str]:
        return self.schema, self.name

    def as_source_table(self) -> SourceTable:
        """The table as bronze last saw it (for a drop: its last columns)."""
        return SourceTable(oid=self.relid or 0, schema=self.schema, name=self.name, qualified=self.qualified,
                           relkind="r", persistence="p", is_partition=False, root=self.ident,
                           replica_identity=self.replica_identity, key=self.key, has_primary_key=bool(self.key),
                           columns=self.columns)


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the bronze schema and its bookkeeping tables (idempotent)."""
    conn.execute(sql_text("medallion.bronze", "schema.sql"))
    conn.commit()


def create_bronze_table(conn: psycopg.Connection, name: str) -> None:
    """bronze.<name>: one captured table's changes (idempotent; not committed here)."""
    template = sql.SQL(sql_text("medallion.bronze", "bronze_table.sql"))
    prefix = object_prefix(name, len("_append_only"))
    conn.execute(template.format(
        table=sql.Identifier(name),
        pkey=sql.Identifier(f"{prefix}_pkey"),
        op_check=sql.Identifier(f"{prefix}_op"),
        append_only=sql.Identifier(f"{prefix}_append_only"),
    ))


def allow_epochs(conn: psycopg.Connection, name: str) -> None:
    """Let a bronze table made before re-syncs existed take E rows (its op check is widened)."""
    prefix = object_prefix(name, len("_append_only"))
    checks = conn.execute(
        "select conname from pg_constraint where conrelid = to_regclass(format('%%I.%%I', 'bronze', %s::text)) "
        "and contype = 'c' and pg_get_constraintdef(oid) like %s and pg_get_constraintdef(oid) not like %s",
        [name, "%op%", "%'E'%"]).fetchall()
    for (constraint,) in checks:
        conn.execute(sql.SQL("alter table {} drop constraint {}, add constraint {} check "
                             "(op in ('R', 'I', 'U', 'D', 'T', 'E'))").format(
            sql.Identifier(BRONZE_SCHEMA, name), sql.Identifier(constraint), sql.Identifier(f"{prefix}_op")))


def record_table(conn: psycopg.Connection, bronze: str, table: SourceTable, commit_lsn: int, commit_ts: object,
                 ordinal: int = 0, event: str = "snapshot") -> bool:
    """Record table's schema as holding from (commit_lsn, ordinal) on, unless bronze already
    has exactly that schema for it (a drop is always recorded). Returns whether a row was
    written (not committed here)."""
    latest = recorded_tables(conn, only=bronze).get(bronze)
    columns = tuple(table.columns)
    if event != "drop" and latest is not None and latest.event != "drop" and latest.columns == columns \
            and latest.key == table.key and latest.replica_identity == table.replica_identity \
            and latest.ident == table.ident:  # a rename is recorded: silver follows the latest name
        return False
    conn.execute(sql_text("medallion.bronze", "table_schema_insert.sql"), {
        "bronze": bronze, "schema": table.schema, "table": table.name, "qualified": table.qualified,
        "lsn": commit_lsn, "ordinal": ordinal, "ts": commit_ts,
        "columns": json.dumps([c.as_json() for c in columns]), "key": list(table.key),
        "identity": table.replica_identity, "event": event, "relid": table.oid})
    return True


def recorded_tables(conn: psycopg.Connection, only: str | None = None) -> dict[str, RecordedTable]:
    """The latest recorded schema of every captured table, by bronze table name."""
    if conn.execute("select to_regclass('bronze.table_schema') is null").fetchone()[0]:
        return {}
    if not conn.execute("select exists (select from pg_attribute where attrelid = 'bronze.table_schema'::regclass "
                        "and attname = 'relid')").fetchone()[0]:
        ensure_schema(conn)  # a bronze made by an older version: bring its bookkeeping up to date
    rows = conn.execute(sql_text("medallion.bronze", "table_schema_latest.sql"), {"only": only}).fetchall()
    return {row[0]: RecordedTable(
        bronze=row[0], schema=row[1], name=row[2], qualified=row[3], commit_lsn=row[4],
        columns=tuple(Column.from_json(c) for c in row[5]),
        key=tuple(row[6]), replica_identity=row[7], event=row[8], relid=row[9]) for row in rows}


def former_names(conn: psycopg.Connection) -> dict[str, set[tuple[str, str]]]:
    """Every (schema, table) name bronze recorded for each bronze table: more than one after a
    rename (the latest is in recorded_tables)."""
    if conn.execute("select to_regclass('bronze.table_schema') is null").fetchone()[0]:
        return {}
    names: dict[str, set[tuple[str, str]]] = {}
    for bronze, schema, table in conn.execute(
            "select distinct bronze_table, schema_name, table_name from bronze.table_schema").fetchall():
        names.setdefault(bronze, set()).add((schema, table))
    return names


def record_uncaptured(conn: psycopg.Connection, table: SourceTable, lsn: int) -> None:
    conn.execute("insert into bronze.uncaptured_table (oid, qualified, seen_lsn) values (%s, %s, %s) "
                 "on conflict (oid) do nothing", [table.oid, table.qualified, lsn])


def uncaptured_oids(conn: psycopg.Connection) -> set[int]:
    return {oid for (oid,) in conn.execute("select oid from bronze.uncaptured_table").fetchall()}


def read_state(conn: psycopg.Connection, slot: str, lock: bool = False) -> State | None:
    query = (
        "select slot_name, source_system_id, source_database, source_database_oid::int, "
        "snapshot_lsn::text, last_commit_lsn::text, last_commit_ts, changes_total, plugin "
        "from bronze.ingest_state where slot_name = %s"
    )
    row = conn.execute(query + (" for update" if lock else ""), [slot]).fetchone()
    return State(*row) if row else None


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows of every bronze change table that bronze has recorded, by name."""
    counts = {}
    for name in sorted(recorded_tables(conn)):
        query = sql.SQL("select count(*) from {}").format(sql.Identifier(BRONZE_SCHEMA, name))
        counts[name] = conn.execute(query).fetchone()[0]
    return counts
