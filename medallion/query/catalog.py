"""Which tables carry system-time history, read from the warehouse rather than hard-coded.

A table is system-versioned when it has both sys_start and sys_end of type timestamptz
(the silver *_hist tables). Discovering them keeps `medallion query` working for every
history table a later model adds, and lets errors tell "no history" from "no such table".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from medallion.sqlfiles import sql_text

# (schema, table) exactly as pg_catalog stores them: unquoted SQL names are folded to
# lower case before they are looked up here.
QualifiedName = tuple[str, str]


def display_name(name: QualifiedName) -> str:
    """schema.table, as messages show it."""
    return f"{name[0]}.{name[1]}"


def _parse_name(text: str) -> QualifiedName:
    schema, dot, table = text.partition(".")
    if not dot or not schema or not table:
        raise ValueError(f"expected schema.table, got {text!r}")
    return schema, table


@dataclass(frozen=True)
class Catalog:
    """What the rewrite needs to know about the database, as plain data (so it stays pure).

    versioned: the system-versioned tables. relations: every relation a query may name, or
    None when unknown (then any name without history is reported as such, not as missing).
    search_path: where unqualified names are looked up, in order.
    """

    versioned: frozenset[QualifiedName]
    relations: frozenset[QualifiedName] | None = None
    search_path: tuple[str, ...] = ("public",)
    # gold marts answered FOR SYSTEM_TIME AS OF by their as-of function: mart -> function (same schema)
    marts: tuple[tuple[QualifiedName, str], ...] = ()

    def mart_function(self, name: QualifiedName) -> str | None:
        """The as-of function of a gold mart (gold.vw_monthly_revenue -> monthly_revenue_as_of)."""
        return dict(self.marts).get(name)

    @classmethod
    def of(cls, *versioned: str, relations: Iterable[str] | None = None,
           search_path: Iterable[str] = ("public",)) -> Catalog:
        """A catalog from "schema.table" strings: for tests and for callers without a database."""
        return cls(versioned=frozenset(_parse_name(v) for v in versioned),
                   relations=None if relations is None else frozenset(_parse_name(r) for r in relations),
                   search_path=tuple(search_path))

    def resolve(self, schema: str | None, table: str) -> QualifiedName | None:
        """The relation a (possibly unqualified) name means, as PostgreSQL's search path would pick it.

        Returns None when the relation list is known and holds no such name."""
        if schema is not None:
            name = (schema, table)
            return name if self.relations is None or name in self.relations or name in self.versioned else None
        known = self.versioned if self.relations is None else self.relations | self.versioned
        for candidate in self.search_path:
            if (candidate, table) in known:
                return candidate, table
        if self.relations is None:
            # Unknown database contents: report the name in its first schema, as written.
            return (self.search_path[0] if self.search_path else "public"), table
        return None

    def history_table_for(self, name: QualifiedName) -> QualifiedName | None:
        """The *_hist table beside a current view or table (silver.dim_customer -> silver.dim_customer_hist)."""
        candidate = (name[0], f"{name[1]}_hist")
        return candidate if candidate in self.versioned else None


def _names(conn: psycopg.Connection, file: str) -> frozenset[QualifiedName]:
    rows = conn.execute(sql_text("medallion.query", file)).fetchall()
    return frozenset((schema, table) for schema, table in rows)


def load_catalog(conn: psycopg.Connection) -> Catalog:
    """Read the catalog in the caller's transaction, so it matches the data the query sees."""
    search_path = tuple(row[0] for row in conn.execute(sql_text("medallion.query", "search_path.sql")))
    marts = tuple(((schema, mart), function) for schema, mart, function
                  in conn.execute(sql_text("medallion.query", "mart_functions.sql")).fetchall())
    return Catalog(versioned=_names(conn, "versioned_tables.sql"),
                   relations=_names(conn, "relations.sql"),
                   search_path=search_path, marts=marts)
