"""Schema discovery: the source's tables, columns, types and keys, read from its catalog.

Nothing about a table is typed by hand: what capture and silver know of it comes from here
(and, once captured, from bronze's record of what was read here).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from medallion.sqlfiles import sql_text


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as the source declares it, e.g. public.mpaa_rating, numeric(5,2)
    warehouse_type: str  # as silver stores it: built-in types kept, domains -> base, others -> text
    not_null: bool = False
    attnum: int = 0  # the column's number in the source: it survives a rename, not a drop
    missing: str | None = None  # what rows older than ADD COLUMN ... DEFAULT hold (text), if anything

    def as_json(self) -> dict:
        return {"name": self.name, "type": self.type, "warehouse_type": self.warehouse_type,
                "not_null": self.not_null, "attnum": self.attnum, "missing": self.missing}

    @classmethod
    def from_json(cls, c: dict) -> Column:
        return cls(c["name"], c["type"], c["warehouse_type"], c.get("not_null", False), c.get("attnum", 0),
                   c.get("missing"))


@dataclass(frozen=True)
class SourceTable:
    oid: int
    schema: str
    name: str
    qualified: str  # format('%I.%I'): how bronze's source_table names it
    relkind: str  # r ordinary, p partitioned
    persistence: str  # p permanent, u unlogged, t temporary
    is_partition: bool
    root: tuple[str, str]  # the partitioned root for a partition, else the table itself
    replica_identity: str  # d default, f full, i index, n nothing
    key: tuple[str, ...]  # primary key columns, else the replica identity index's
    has_primary_key: bool
    columns: tuple[Column, ...]

    @property
    def ident(self) -> tuple[str, str]:
        return self.schema, self.name


def read_tables(conn: psycopg.Connection, relid: int | None = None) -> list[SourceTable]:
    """Every table outside the system schemas (or the one with OID relid), ordered by schema and name."""
    tables = []
    for row in conn.execute(sql_text("medallion.source", "catalog_tables.sql"), {"relid": relid}).fetchall():
        (oid, schema, name, qualified, relkind, persistence, is_partition, root_schema, root_table,
         identity, key, has_pk, columns) = row
        tables.append(SourceTable(
            oid=oid, schema=schema, name=name, qualified=qualified, relkind=relkind,
            persistence=persistence, is_partition=is_partition, root=(root_schema, root_table),
            replica_identity=identity, key=tuple(key), has_primary_key=has_pk,
            columns=tuple(Column.from_json(c) for c in columns)))
    return tables


def table_from_json(data: dict) -> SourceTable:
    """A SourceTable from one row of catalog_tables.sql as JSON (what the DDL trigger sends)."""
    return SourceTable(
        oid=int(data["oid"]), schema=data["schema_name"], name=data["table_name"], qualified=data["qualified"],
        relkind=data["relkind"], persistence=data["relpersistence"], is_partition=data["relispartition"],
        root=(data["root_schema"], data["root_table"]), replica_identity=data["relreplident"],
        key=tuple(data["key_columns"] or ()), has_primary_key=data["has_primary_key"],
        columns=tuple(Column.from_json(c) for c in data["columns"]))
