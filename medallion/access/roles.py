"""Create the pipeline's roles and grant each what it needs, and no more.

Each function takes a connection whose role may do the job (an admin's for creating roles; the
layers' owner, or an admin, for the analyst's read grants) and returns what it did, in words,
for the caller to show. Every identifier goes through psycopg.sql; the SQL is in sql/*.sql.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from medallion.sqlfiles import named_sql
from medallion.errors import RoleSetupFailed

DEFAULT_CAPTURE_ROLE = "medallion_capture"
DEFAULT_PIPELINE_ROLE = "medallion_pipeline"
# Analysts read these layers; bronze (raw changes, bookkeeping) stays the pipeline's.
ANALYST_LAYERS = ("silver", "gold")
PIPELINE_LAYERS = ("bronze", "silver", "gold", "medallion")  # medallion: bookkeeping, not for analysts

_PACKAGE = "medallion.access"


def _sql(file: str, name: str, **identifiers: sql.Composable) -> sql.Composable:
    return sql.SQL(named_sql(_PACKAGE, file)[name]).format(**identifiers)


# Who may run each kind of statement, as PostgreSQL 15 and 16 decide it (checked on both servers:
# tests/test_managed_source.py). REPLICATION is the capture role's only attribute that CREATEROLE
# does not give: 15 reserves it to superusers ("must be superuser to create replication users"),
# 16 to roles that have REPLICATION themselves; the other roles need CREATEROLE alone.
CAPTURE_ROLE_RUNNER = "a superuser (PostgreSQL 15), or on 16 also a role with CREATEROLE and REPLICATION"
ROLE_RUNNER = "a role with CREATEROLE (the one that creates a role may alter it), or a superuser"
SOURCE_GRANT_RUNNER = "the owner of the database, of each captured schema and of each captured table, or a superuser"
WAREHOUSE_GRANT_RUNNER = "the owner of the database, or a superuser"


@dataclass(frozen=True)
class Statement:
    """One statement of the role setup: what it does (in words, for errors), and the statement."""

    what: str
    statement: sql.Composable


def _run(conn: psycopg.Connection, step: Statement, runner: str) -> None:
    """One grant or create; PostgreSQL's refusal becomes one line naming what was being done, who
    may do it, and the way out for a DSN that is not that role (a DBA runs --print-sql's statements)."""
    try:
        conn.execute(step.statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        user = conn.info.user
        detail = f" ({exc.diag.message_detail.rstrip('.')})" if exc.diag.message_detail else ""
        raise RoleSetupFailed(f"{step.what}: {exc.diag.message_primary} for {user}{detail}; this needs {runner}: "
                              "have one run it (see 'medallion grant --print-sql'), then run 'medallion grant' "
                              "again") from None
    except psycopg.Error as exc:
        raise RoleSetupFailed(f"{step.what}: {exc.diag.message_primary or exc}") from None


def role_exists(conn: psycopg.Connection, role: str) -> bool:
    return bool(conn.execute(named_sql(_PACKAGE, "roles.sql")["role_exists"], {"role": role}).fetchone()[0])


# -- the statements, one source for running them and for printing them (--print-sql) ----------------

def create_role_statements(role: str, kind: str) -> list[Statement]:
    """CREATE ROLE for one of the pipeline's kinds (capture, pipeline, analyst), and for the
    analyst its read-only default (which the role's creator may set)."""
    ident = sql.Identifier(role)
    steps = [Statement(f"creating role {role}", _sql("roles.sql", f"create_{kind}", role=ident))]
    if kind == "analyst":
        steps.append(Statement(f"making {role}'s transactions read-only",
                               _sql("roles.sql", "analyst_read_only", role=ident)))
    return steps


def capture_role_statements(role: str) -> list[sql.Composable]:
    """The statement an admin runs for the capture role (CAPTURE_ROLE_RUNNER)."""
    return [step.statement for step in create_role_statements(role, "capture")]


def capture_grant_statements(database: str, role: str, tables: Iterable[tuple[str, str]]) -> list[Statement]:
    """CONNECT on the source database, USAGE on the captured schemas, SELECT on each captured
    table (its root: the snapshot reads partitions through it). Nothing else: the stream needs
    only REPLICATION (SOURCE_GRANT_RUNNER runs these)."""
    ident = sql.Identifier(role)
    tables = sorted(set(tables))
    steps = [Statement(f"granting {role} connect on database {database}",
                       _sql("capture_grants.sql", "connect", database=sql.Identifier(database), role=ident))]
    for schema in sorted({schema for schema, _ in tables}):
        steps.append(Statement(f"granting {role} usage on schema {schema}",
                               _sql("capture_grants.sql", "schema_usage", schema=sql.Identifier(schema), role=ident)))
    for schema, table in tables:
        steps.append(Statement(f"granting {role} select on {schema}.{table}",
                               _sql("capture_grants.sql", "table_select", table=sql.Identifier(schema, table),
                                    role=ident)))
    return steps


def pipeline_grant_statements(database: str, role: str) -> list[Statement]:
    """CONNECT and CREATE on the warehouse database (the pipeline then creates, and owns, its
    schemas), and btree_gist made available (WAREHOUSE_GRANT_RUNNER runs these)."""
    return [Statement(f"granting {role} connect and create on database {database}",
                      _sql("pipeline_grants.sql", "database", database=sql.Identifier(database),
                           role=sql.Identifier(role))),
            Statement(f"creating extension btree_gist in {database}", _sql("pipeline_grants.sql", "btree_gist"))]


def _layers(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """The layers analysts read that exist in this warehouse, with their owners."""
    return conn.execute(named_sql(_PACKAGE, "analyst_grants.sql")["layers"], {"schemas": list(ANALYST_LAYERS)}).fetchall()


def analyst_grant_statements(conn: psycopg.Connection, analyst: str, owner: str | None = None) -> list[Statement]:
    """CONNECT on the warehouse; USAGE and SELECT on silver and gold, EXECUTE on their functions,
    now and by default privileges of their owner (owner None: each layer's), for the layers that exist."""
    database = conn.info.dbname
    ident = sql.Identifier(analyst)
    steps = [Statement(f"granting {analyst} connect on database {database}",
                       _sql("analyst_grants.sql", "connect", database=sql.Identifier(database), analyst=ident))]
    for schema, layer_owner in _layers(conn):
        names = {"schema": sql.Identifier(schema), "analyst": ident, "owner": sql.Identifier(owner or layer_owner)}
        for step in ("schema_usage", "tables", "functions", "default_tables", "default_functions"):
            steps.append(Statement(f"granting {analyst} read on {schema} ({step})",
                                   _sql("analyst_grants.sql", step, **names)))
    return steps


# -- running them ------------------------------------------------------------------------------------

def _ensure(conn: psycopg.Connection, role: str, kind: str, runner: str) -> list[str]:
    if role_exists(conn, role):
        return []
    for step in create_role_statements(role, kind):
        _run(conn, step, runner)
    return [f"created login role {role} ({kind}, no password: set one with ALTER ROLE ... PASSWORD, "
            "or use peer or certificate authentication)"]


def ensure_analyst(conn: psycopg.Connection, role: str) -> list[str]:
    """The analysts' login role, every transaction read-only by default (autocommit conn)."""
    if role_exists(conn, role):  # read-only by default each time (idempotent)
        _run(conn, create_role_statements(role, "analyst")[1], ROLE_RUNNER)
        return []
    return _ensure(conn, role, "analyst", ROLE_RUNNER)


def ensure_capture(conn: psycopg.Connection, role: str) -> list[str]:
    return _ensure(conn, role, "capture", CAPTURE_ROLE_RUNNER)


def ensure_pipeline(conn: psycopg.Connection, role: str) -> list[str]:
    return _ensure(conn, role, "pipeline", ROLE_RUNNER)


def grant_capture(conn: psycopg.Connection, role: str, tables: Iterable[tuple[str, str]]) -> list[str]:
    tables = sorted(set(tables))
    for step in capture_grant_statements(conn.info.dbname, role, tables):
        _run(conn, step, SOURCE_GRANT_RUNNER)
    return [f"{role} may replicate and read {len(tables)} captured tables of {conn.info.dbname}"]


def grant_pipeline(conn: psycopg.Connection, role: str) -> list[str]:
    """The pipeline's grants on the warehouse. Notes schemas that another role owns."""
    database = conn.info.dbname
    for step in pipeline_grant_statements(database, role):
        _run(conn, step, WAREHOUSE_GRANT_RUNNER)
    done = [f"{role} may create bronze, silver and gold in {database}"]
    owned = conn.execute(named_sql(_PACKAGE, "analyst_grants.sql")["owned_elsewhere"],
                         {"schemas": list(PIPELINE_LAYERS), "pipeline": role}).fetchall()
    if owned:
        names = ", ".join(f"{schema} (owner {owner})" for schema, owner in owned)
        done.append(f"note: {names} not owned by {role}, which cannot write there: drop them ('medallion "
                    f"reset' as their owner) for {role} to recreate them, or alter their owner and their tables'")
    return done


def grant_analyst(conn: psycopg.Connection, analyst: str, owner: str | None = None) -> list[str]:
    """Read access for analysts to silver and gold, for what exists and, by default privileges,
    for what the layers' owner creates later.

    Run by the owner after every build (owner None: each layer's owner, i.e. oneself), or by an
    admin. Layers not built yet are skipped: the next build grants them."""
    for step in analyst_grant_statements(conn, analyst, owner):
        _run(conn, step, "the owner of silver and gold, or a superuser")
    layers = [schema for schema, _ in _layers(conn)]
    database = conn.info.dbname
    if not layers:
        return [f"{analyst} may connect to {database}; silver and gold are granted by the first build"]
    return [f"{analyst} may read {' and '.join(layers)} of {database}"]
