"""Schema discovery: the source's tables, columns, types and keys, read from its catalog.

Nothing about a table is typed by hand: what capture and silver know of it comes from here
(and, once captured, from bronze's record of what was read here).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from medallion.db import sql_text


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as the source declares it, e.g. public.mpaa_rating, numeric(5,2)
    warehouse_type: str  # as silver stores it: built-in types kept, domains -> base, others -> text
    not_null: bool = False

    def as_json(self) -> dict:
        return {"name": self.name, "type": self.type, "warehouse_type": self.warehouse_type,
                "not_null": self.not_null}


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


def read_tables(conn: psycopg.Connection) -> list[SourceTable]:
    """Every table outside the system schemas, ordered by schema and name."""
    tables = []
    for row in conn.execute(sql_text("medallion.source", "catalog_tables.sql")).fetchall():
        (oid, schema, name, qualified, relkind, persistence, is_partition, root_schema, root_table,
         identity, key, has_pk, columns) = row
        tables.append(SourceTable(
            oid=oid, schema=schema, name=name, qualified=qualified, relkind=relkind,
            persistence=persistence, is_partition=is_partition, root=(root_schema, root_table),
            replica_identity=identity, key=tuple(key), has_primary_key=has_pk,
            columns=tuple(Column(c["name"], c["type"], c["warehouse_type"], c["not_null"]) for c in columns)))
    return tables
