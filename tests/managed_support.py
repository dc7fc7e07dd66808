"""What the tests on the managed source (tests/managed_source.py) share: a small schema of the
owner's (ops.customer, ops."Order Line"), capture started as a user starts it, and silver
compared with the source."""

from __future__ import annotations

import subprocess

import psycopg
from psycopg import sql

from managed_source import ManagedPipeline
from support import query

OPS_SCHEMA = """
create schema ops;
create table ops.customer (code text primary key, name text not null, note text);
create table ops."Order Line" (order_ref text, line_no int, qty int not null, primary key (order_ref, line_no));
insert into ops.customer values ('c-1', 'Ada', null), ('c-2', 'Grace', 'vip');
insert into ops."Order Line" values ('o-1', 1, 3), ('o-1', 2, 1), ('o-2', 1, 7);
"""
CHANGES = """
insert into ops.customer values ('c-3', 'Linus', 'new');
update ops.customer set note = 'moved' where code = 'c-1';
delete from ops.customer where code = 'c-2';
update ops."Order Line" set qty = qty + 1 where order_ref = 'o-1';
update ops."Order Line" set line_no = 9 where order_ref = 'o-2';
delete from ops."Order Line" where order_ref = 'o-1' and line_no = 2;
"""


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def source_rows(managed: ManagedPipeline, schema: str, table: str) -> list[tuple]:
    with psycopg.connect(managed.owner_dsn) as conn:
        return sorted(conn.execute(sql.SQL("select * from {}").format(sql.Identifier(schema, table))).fetchall(),
                      key=repr)


def silver_rows(managed: ManagedPipeline, function: str) -> list[tuple]:
    """silver.<function>(now()) without the system columns: the current state."""
    relation = sql.Identifier("silver", function)
    with psycopg.connect(managed.warehouse_dsn) as conn:
        names = [c.name for c in conn.execute(sql.SQL("select * from {}(now()) limit 0").format(relation)).description]
        columns = sql.SQL(", ").join(sql.Identifier(n) for n in names if not n.startswith("sys_"))
        return sorted(conn.execute(sql.SQL("select {} from {}(now())").format(columns, relation)).fetchall(), key=repr)


def as_of_function(managed: ManagedPipeline, schema: str, table: str) -> str:
    """The silver as-of function of a source table, found in the warehouse's catalog by its history's name."""
    rows = query(managed.warehouse_dsn, "select p.proname from pg_proc as p join pg_namespace as n on "
                 "n.oid = p.pronamespace where n.nspname = 'silver' and p.proname like %s", [f"%{table}_as_of"])
    names = sorted({r[0] for r in rows})
    assert len(names) == 1, (schema, table, names)
    return names[0]


def assert_silver_is_the_source(managed: ManagedPipeline, tables: list[str]) -> None:
    for table in tables:
        assert silver_rows(managed, as_of_function(managed, "ops", table)) == source_rows(managed, "ops", table), table


def start_capture(managed: ManagedPipeline) -> None:
    """What the README asks of a user on a managed server: the owner grants and prepares, capture runs."""
    (managed.folder / "medallion.toml").write_text('[capture]\ninclude = ["ops.*"]\n')
    managed.owner(OPS_SCHEMA)
    ok(managed.medallion("grant", as_owner=True))  # the capture role exists (the DBA's): the owner's grants
    prepared = ok(managed.medallion("prepare-source", as_owner=True))
    assert f"publication {managed.slot}: 2 tables" in prepared, prepared  # a list: schemas need a superuser
    first = ok(managed.medallion("run"))
    assert "ingested: 5 snapshot rows" in first, first
