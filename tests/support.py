"""Small helpers for tests: databases of the test cluster and one-statement SQL."""

from __future__ import annotations

import psycopg
from psycopg import sql

from medallion.source.cluster import EmbeddedCluster


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
