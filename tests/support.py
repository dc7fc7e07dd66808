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


def schema_dump(dsn: str, schema: str) -> dict[str, list[str]]:
    """Every table, partition and view of a schema as ordered row texts: two builds are equal
    row for row when their dumps are."""
    relations = query(dsn, "select c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
                           "where n.nspname = %s and c.relkind in ('r', 'p', 'v') order by 1", [schema])
    dump = {}
    for (name,) in relations:
        statement = sql.SQL("select t::text from {} as t order by 1").format(sql.Identifier(schema, name))
        dump[name] = [row[0] for row in query(dsn, statement)]
    return dump
