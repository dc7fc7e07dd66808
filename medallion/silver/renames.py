"""Silver after a source table was renamed: the history moves, nothing stays current under the old name.

Bronze keeps one change table per source table across renames (medallion.bronze.ingest finds a
renamed table by its relid) and records each name in bronze.table_schema. Silver is named after
the latest name, so the next build writes the whole history, from the first snapshot on, under
the new name. The old name's silver relations (<old>_hist, <old>, <old>_as_of) would otherwise
stay behind with their rows "current" forever: they are dropped here, before dbt runs. Nothing of
the history is lost by that: every version is in the new name's history.

A relation something else still reads (a view of the project's own, say) is not dropped: the
build stops in one line naming it, since dropping it would take the reader with it.
"""

from __future__ import annotations

import psycopg
from psycopg import errors, sql

from medallion import naming
from medallion.bronze.store import former_names
from medallion.config import ProjectConfig
from medallion.errors import MedallionError
from medallion.silver.project import SilverTable

SILVER_SCHEMA = "silver"


def retired_bases(config: ProjectConfig, silver: list[SilverTable],
                  names: dict[str, set[tuple[str, str]]]) -> dict[str, tuple[str, str]]:
    """Silver base names of earlier names of the planned tables that no table uses now,
    each with the table's current (schema, name)."""
    planned = {t.base for t in silver}
    retired: dict[str, tuple[str, str]] = {}
    for table in silver:
        for ident in names.get(table.table.bronze, set()) - {table.table.ident}:
            base = naming.silver_base(*ident, config.options(*ident).silver).replace('"', "_")
            if base not in planned:
                retired[base] = table.table.ident
    return retired


def drop_retired(conn: psycopg.Connection, config: ProjectConfig, silver: list[SilverTable]) -> list[str]:
    """Drop the silver relations left under a renamed table's old names; returns what was dropped."""
    retired = retired_bases(config, silver, former_names(conn))
    dropped: list[str] = []
    for base, now in sorted(retired.items()):
        new_base = next(t.base for t in silver if t.table.ident == now)
        # its as-of functions first: they return the history's row type
        for (signature,) in conn.execute(
                "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                "where n.nspname = %s and p.proname = %s", [SILVER_SCHEMA, f"{base}_as_of"]).fetchall():
            with conn.transaction():
                conn.execute(sql.SQL("drop function if exists {}").format(sql.SQL(signature)))
        for name, relkind in conn.execute(
                "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relname = any(%s) and c.relkind in ('r', 'p', 'v', 'm') "
                "order by c.relkind = 'v' desc",  # the current view reads the history: first
                [SILVER_SCHEMA, [base, f"{base}_hist"]]).fetchall():
            kind = {"v": "view", "m": "materialized view"}.get(relkind, "table")
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("drop {} {}").format(sql.SQL(kind), sql.Identifier(SILVER_SCHEMA, name)))
            except errors.DependentObjectsStillExist as exc:
                detail = (exc.diag.message_detail or "").splitlines()[0] if exc.diag.message_detail else ""
                raise MedallionError(
                    f"silver.{name} belongs to a table the source renamed (its history is now silver.{new_base}_hist) "
                    f"but {detail or 'another object depends on it'}: point that at silver.{new_base}, or drop it"
                ) from None
            dropped.append(f"silver.{name}")
    conn.commit()
    return dropped
