"""Small helpers for tests: databases of the test cluster and one-statement SQL."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import psycopg
from psycopg import sql

from medallion.settings import Settings
from medallion.source.cluster import EmbeddedCluster


def environment(settings: Settings) -> dict[str, str]:
    """Environment for running the `medallion` command against a test's private pipeline."""
    env = dict(os.environ)
    for name in ("MEDALLION_CONFIG", "PAGILA_DIR", "MEDALLION_PLUGIN"):
        env.pop(name, None)
    env.update(MEDALLION_SOURCE_DSN=settings.source_dsn or "", MEDALLION_WAREHOUSE_DSN=settings.warehouse_dsn or "",
               MEDALLION_SLOT=settings.slot, MEDALLION_HOME=str(settings.home))
    if settings.pagila_dir:
        env["PAGILA_DIR"] = str(settings.pagila_dir)
    if settings.config_path:
        env["MEDALLION_CONFIG"] = str(settings.config_path)
    if settings.plugin:
        env["MEDALLION_PLUGIN"] = settings.plugin
    return env


def medallion(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The `medallion` command, as a user runs it: from a folder without a medallion.toml (the
    configuration is MEDALLION_CONFIG's, or none), not from the repository's Pagila project."""
    return subprocess.run([sys.executable, "-m", "medallion.cli", *args], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The command failed (exit code `code`; `status` says 2: it cannot tell) with exactly one
    'error: ' line, last, and no traceback."""
    assert result.returncode == code, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr  # progress notes may come first
    assert "Traceback" not in result.stderr
    return errors[0]


def create_database(cluster: EmbeddedCluster, name: str, template: str | None = None) -> str:
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        query = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("{} template {}").format(query, sql.Identifier(template))
        conn.execute(query)
    return cluster.dsn(name)


def drop_database(cluster: EmbeddedCluster, name: str) -> None:
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        for (slot,) in conn.execute(
                "select slot_name from pg_replication_slots where database = %s", [name]).fetchall():
            conn.execute("select pg_drop_replication_slot(%s)", [slot])
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def execute(dsn: str, statement: str, params: object = None) -> None:
    """Run one statement in its own transaction (each step of a scripted history commits)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement, params)


def query(dsn: str, statement: str, params: object = None) -> list[tuple]:
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        return conn.execute(statement, params).fetchall()


def schema_dump(dsn: str, schema: str) -> dict[str, list[str]]:
    """Every table, partition and view of a schema as ordered row texts: two builds are equal
    row for row when their dumps are. (medallion.follow_step and medallion.stored_build, the statements
    a build stores for the next one, are left out: a full build stores none for gold, an
    incremental one does.)"""
    relations = query(dsn, "select c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
                           "where n.nspname = %s and c.relkind in ('r', 'p', 'v') "
                           "and c.relname not in ('follow_step', 'stored_build') "
                           "order by 1", [schema])
    dump = {}
    for (name,) in relations:
        statement = sql.SQL("select t::text from {} as t order by 1").format(sql.Identifier(schema, name))
        dump[name] = [row[0] for row in query(dsn, statement)]
    return dump
