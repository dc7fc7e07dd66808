"""A source like a managed one, used as a user would: a separate server (PostgreSQL 15 and 16),
scram passwords over TCP, tables owned by a role that is not a superuser, and a pipeline that
connects with the capture role only (tests/managed_source.py). Nothing is done as a superuser
but what a provider's admin does: create the owner's database and the capture role.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import sql

from managed_source import ManagedPipeline

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


def ok(result: object) -> str:
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
    rows = psycopg.connect(managed.warehouse_dsn, autocommit=True).execute(
        "select p.proname from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace "
        "where n.nspname = 'silver' and p.proname like '%%_as_of' and p.proname like %s", [f"%{table}%"]).fetchall()
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
    ok(managed.medallion("prepare-source", as_owner=True))
    first = ok(managed.medallion("run"))
    assert "ingested: 5 snapshot rows" in first, first


def test_capture_and_history_with_the_capture_role_only(managed: ManagedPipeline) -> None:
    start_capture(managed)
    assert_silver_is_the_source(managed, ["customer", "Order Line"])
    managed.owner(CHANGES)
    ok(managed.medallion("run"))
    assert_silver_is_the_source(managed, ["customer", "Order Line"])
    with psycopg.connect(managed.capture_dsn) as conn:  # the pipeline's login really is that role
        assert conn.execute("select rolsuper, rolreplication from pg_roles where rolname = current_user").fetchone() \
            == (False, True)


@pytest.mark.xfail(strict=True, reason="online snapshot (issue 20 item 1)")
def test_a_table_the_owner_creates_while_capture_runs(managed: ManagedPipeline) -> None:
    """Rows inserted before the owner publishes the new table (prepare-source) arrive too."""
    start_capture(managed)
    managed.owner("create table ops.refund (refund_id text primary key, amount numeric(8,2)); "
                  "insert into ops.refund values ('r-1', 10.50), ('r-2', 3.00)")
    waiting = managed.medallion("run")  # not published yet: the run names it and the fix (it stops, today)
    assert "ops.refund" in waiting.stderr and "'medallion prepare-source'" in waiting.stderr, waiting.stderr
    ok(managed.medallion("grant", as_owner=True))
    ok(managed.medallion("prepare-source", as_owner=True))
    managed.owner("insert into ops.refund values ('r-3', 7.25); update ops.customer set note = 'x' where code = 'c-1'")
    ok(managed.medallion("run"))
    assert_silver_is_the_source(managed, ["customer", "Order Line", "refund"])
