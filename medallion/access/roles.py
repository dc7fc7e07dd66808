"""Create the pipeline's roles and grant each what it needs, and no more.

Each function takes a connection whose role may do the job (an admin's for creating roles; the
layers' owner, or an admin, for the analyst's read grants) and returns what it did, in words,
for the caller to show. Every identifier goes through psycopg.sql; the SQL is in sql/*.sql.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from medallion.db import named_sql
from medallion.errors import RoleSetupFailed

DEFAULT_CAPTURE_ROLE = "medallion_capture"
DEFAULT_PIPELINE_ROLE = "medallion_pipeline"
# Analysts read these layers; bronze (raw changes, bookkeeping) stays the pipeline's.
ANALYST_LAYERS = ("silver", "gold")
PIPELINE_LAYERS = ("bronze", "silver", "gold")

_PACKAGE = "medallion.access"


def _sql(file: str, name: str, **identifiers: sql.Composable) -> sql.Composable:
    return sql.SQL(named_sql(_PACKAGE, file)[name]).format(**identifiers)


def _run(conn: psycopg.Connection, statement: sql.Composable, what: str) -> None:
    """One grant or create; PostgreSQL's refusal becomes one line naming what was being done."""
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        user = conn.info.user
        raise RoleSetupFailed(f"{what}: {exc.diag.message_primary} for {user}; run 'medallion grant' with "
                              "DSNs of an admin (a superuser, or a role with CREATEROLE that owns the "
                              "tables and the database)") from None
    except psycopg.Error as exc:
        raise RoleSetupFailed(f"{what}: {exc.diag.message_primary or exc}") from None


def role_exists(conn: psycopg.Connection, role: str) -> bool:
    return bool(conn.execute(named_sql(_PACKAGE, "roles.sql")["role_exists"], {"role": role}).fetchone()[0])


def _ensure(conn: psycopg.Connection, role: str, kind: str) -> list[str]:
    if role_exists(conn, role):
        return []
    _run(conn, _sql("roles.sql", f"create_{kind}", role=sql.Identifier(role)), f"creating role {role}")
    return [f"created login role {role} ({kind}, no password: set one with ALTER ROLE ... PASSWORD, "
            "or use peer or certificate authentication)"]


def ensure_analyst(conn: psycopg.Connection, role: str) -> list[str]:
    """The analysts' login role, every transaction read-only by default (autocommit conn)."""
    done = _ensure(conn, role, "analyst")
    _run(conn, _sql("roles.sql", "analyst_read_only", role=sql.Identifier(role)),
         f"making {role}'s transactions read-only")
    return done


def ensure_capture(conn: psycopg.Connection, role: str) -> list[str]:
    return _ensure(conn, role, "capture")


def ensure_pipeline(conn: psycopg.Connection, role: str) -> list[str]:
    return _ensure(conn, role, "pipeline")


def grant_capture(conn: psycopg.Connection, role: str, tables: Iterable[tuple[str, str]]) -> list[str]:
    """CONNECT on the source database, USAGE on the captured schemas, SELECT on each captured
    table (its root: the snapshot reads partitions through it). Nothing else: the stream needs
    only REPLICATION, and a table created later is captured from its first change."""
    database = conn.info.dbname
    ident = sql.Identifier(role)
    _run(conn, _sql("capture_grants.sql", "connect", database=sql.Identifier(database), role=ident),
         f"granting {role} connect on database {database}")
    tables = sorted(set(tables))
    for schema in sorted({schema for schema, _ in tables}):
        _run(conn, _sql("capture_grants.sql", "schema_usage", schema=sql.Identifier(schema), role=ident),
             f"granting {role} usage on schema {schema}")
    for schema, table in tables:
        _run(conn, _sql("capture_grants.sql", "table_select", table=sql.Identifier(schema, table), role=ident),
             f"granting {role} select on {schema}.{table}")
    return [f"{role} may replicate and read {len(tables)} captured tables of {database}"]


def grant_pipeline(conn: psycopg.Connection, role: str) -> list[str]:
    """CONNECT and CREATE on the warehouse database (the pipeline then creates, and owns, its
    schemas), and btree_gist made available. Notes schemas that another role owns."""
    database = conn.info.dbname
    _run(conn, _sql("pipeline_grants.sql", "database", database=sql.Identifier(database), role=sql.Identifier(role)),
         f"granting {role} connect and create on database {database}")
    _run(conn, _sql("pipeline_grants.sql", "btree_gist"), f"creating extension btree_gist in {database}")
    done = [f"{role} may create bronze, silver and gold in {database}"]
    owned = conn.execute(named_sql(_PACKAGE, "analyst_grants.sql")["owned_elsewhere"],
                         {"schemas": list(PIPELINE_LAYERS), "pipeline": role}).fetchall()
    if owned:
        names = ", ".join(f"{schema} (owner {owner})" for schema, owner in owned)
        done.append(f"note: {names} not owned by {role}, which cannot write there: drop them ('medallion "
                    f"reset' as their owner) for {role} to recreate them, or alter their owner and their tables'")
    return done


def grant_analyst(conn: psycopg.Connection, analyst: str, owner: str | None = None) -> list[str]:
    """USAGE and SELECT on silver and gold, EXECUTE on their (as-of) functions, for what exists and,
    by default privileges, for what the layers' owner creates later.

    Run by the owner after every build (owner None: each layer's owner, i.e. oneself), or by an
    admin. Layers not built yet are skipped: the next build grants them."""
    layers = conn.execute(named_sql(_PACKAGE, "analyst_grants.sql")["layers"],
                          {"schemas": list(ANALYST_LAYERS)}).fetchall()
    database = conn.info.dbname
    ident = sql.Identifier(analyst)
    _run(conn, _sql("analyst_grants.sql", "connect", database=sql.Identifier(database), analyst=ident),
         f"granting {analyst} connect on database {database}")
    for schema, layer_owner in layers:
        names = {"schema": sql.Identifier(schema), "analyst": ident,
                 "owner": sql.Identifier(owner or layer_owner)}
        for step in ("schema_usage", "tables", "functions", "default_tables", "default_functions"):
            _run(conn, _sql("analyst_grants.sql", step, **names), f"granting {analyst} read on {schema} ({step})")
    if not layers:
        return [f"{analyst} may connect to {database}; silver and gold are granted by the first build"]
    return [f"{analyst} may read {' and '.join(s for s, _ in layers)} of {database}"]


def capture_role_statements(role: str) -> list[sql.Composable]:
    return [_sql("roles.sql", "create_capture", role=sql.Identifier(role))]
