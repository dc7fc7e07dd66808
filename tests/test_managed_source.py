"""A source like a managed one, used as a user would: a separate server (PostgreSQL 15 and 16),
scram passwords over TCP, tables owned by a role that is not a superuser, and a pipeline that
connects with the capture role only (tests/managed_source.py). Nothing is done as a superuser
but what a provider's admin does: create the owner's database and the capture role.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from managed_source import OWNER, ManagedPipeline, run_medallion, user_environment
from managed_support import CHANGES, OPS_SCHEMA, assert_silver_is_the_source, ok, start_capture
from medallion.config import parse_config
from medallion.errors import ConfigError
from medallion.source.cluster import EmbeddedCluster
from support import drop_database, execute, one_error_line, query

def test_capture_and_history_with_the_capture_role_only(managed: ManagedPipeline) -> None:
    start_capture(managed)
    assert_silver_is_the_source(managed, ["customer", "Order Line"])
    managed.owner(CHANGES)
    ok(managed.medallion("run"))
    assert_silver_is_the_source(managed, ["customer", "Order Line"])
    with psycopg.connect(managed.capture_dsn) as conn:  # the pipeline's login really is that role
        assert conn.execute("select rolsuper, rolreplication from pg_roles where rolname = current_user").fetchone() \
            == (False, True)


def test_a_table_the_owner_creates_while_capture_runs(managed: ManagedPipeline) -> None:
    """Rows inserted before the owner publishes the new table (prepare-source) arrive too."""
    start_capture(managed)
    managed.owner("create table ops.refund (refund_id text primary key, amount numeric(8,2)); "
                  "insert into ops.refund values ('r-1', 10.50), ('r-2', 3.00)")
    waiting = managed.medallion("run")  # not published yet: the run names it and the fix (it stops, today)
    said = waiting.stdout + waiting.stderr
    assert "ops.refund" in said and "'medallion prepare-source'" in said, said
    ok(managed.medallion("grant", as_owner=True))
    ok(managed.medallion("prepare-source", as_owner=True))
    managed.owner("insert into ops.refund values ('r-3', 7.25); update ops.customer set note = 'x' where code = 'c-1'")
    ok(managed.medallion("run"))
    assert_silver_is_the_source(managed, ["customer", "Order Line", "refund"])


def printed_blocks(output: str) -> dict[str, list[str]]:
    """`grant --print-sql`'s output: each '-- on the ..., as ...:' comment -> the statements under it."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("-- on the "):
            current = blocks.setdefault(line, [])
        elif current is not None and line.strip() and not line.startswith("--"):
            current.append(line)
    return blocks


def test_grant_as_the_tables_owner_with_createrole(managed: ManagedPipeline, cluster: EmbeddedCluster) -> None:
    """What PostgreSQL lets a CREATEROLE owner do, on 15 and 16, and what `grant` says and prints for it.
    The warehouse's side is the same on both (no REPLICATION): checked on the embedded 15, with an owner
    that has CREATEROLE only (the pgserver 16 has no btree_gist, which silver needs)."""
    version, n = managed.server.version, managed.slot.rsplit("_", 1)[1]
    capture, pipeline, analyst, wh_owner = f"cap_{n}", f"pipe_{n}", f"reader_{n}", f"wh_owner_{n}"
    (managed.folder / "medallion.toml").write_text('[capture]\ninclude = ["ops.*"]\n')
    managed.owner(OPS_SCHEMA)
    warehouse = f"wh_managed_{n}"
    execute(cluster.dsn("postgres"), sql.SQL("create role {} login createrole").format(sql.Identifier(wh_owner)))
    execute(cluster.dsn("postgres"), sql.SQL("create database {} owner {}").format(sql.Identifier(warehouse),
                                                                                  sql.Identifier(wh_owner)))
    warehouse_dsn = cluster.dsn(warehouse, wh_owner)
    env = user_environment(managed.owner_dsn, warehouse_dsn, managed.slot, managed.folder / ".m")
    env["MEDALLION_ANALYST_ROLE"] = analyst
    args = ("grant", "--capture-role", capture, "--pipeline-role", pipeline)
    try:
        line = one_error_line(run_medallion(*args, env=env, cwd=managed.folder))
        reason = ("must be superuser to create replication users" if version == "15" else
                  "Only roles with the REPLICATION attribute may create roles with the REPLICATION attribute")
        assert line.startswith(f"error: creating role {capture}: ") and reason in line, line
        assert "a superuser (PostgreSQL 15), or on 16 also a role with CREATEROLE and REPLICATION" in line
        assert "'medallion grant --print-sql'" in line

        printed = run_medallion(*args, "--print-sql", env=env, cwd=managed.folder)
        assert printed.returncode == 0, printed.stderr
        blocks = printed_blocks(printed.stdout)
        admin = f"-- on the source database {managed.database}, as a superuser (PostgreSQL 15), or on 16 also a " \
                "role with CREATEROLE and REPLICATION:"
        assert blocks[admin] == [f'create role "{capture}" login replication nosuperuser nocreatedb nocreaterole '
                                 'nobypassrls;']
        owner_block = blocks[f"-- on the source database {managed.database}, as the owner of the database, of each "
                             "captured schema and of each captured table, or a superuser:"]
        assert f'grant select on table "ops"."Order Line" to "{capture}";' in owner_block
        assert query(cluster.dsn("postgres"), "select count(*) from pg_roles where rolname = any(%s)",
                     [[pipeline, analyst]]) == [(0,)]  # nothing was run
        with managed.server.dba("postgres") as conn:
            assert conn.execute("select count(*) from pg_roles where rolname = %s", [capture]).fetchone()[0] == 0
            for statement in blocks[admin]:  # the provider's admin runs its block
                conn.execute(statement)

        granted = run_medallion(*args, env=env, cwd=managed.folder)  # the owner does the rest, on both servers
        assert granted.returncode == 0, granted.stderr
        assert f"{capture} may replicate and read 2 captured tables of {managed.database}" in granted.stdout
        assert f"created login role {pipeline}" in granted.stdout and f"created login role {analyst}" in granted.stdout
        with psycopg.connect(warehouse_dsn) as conn:
            assert conn.execute("select has_database_privilege(%s, current_database(), 'create'), "
                                "(select rolconfig from pg_roles where rolname = %s)", [pipeline, analyst]).fetchone() \
                == (True, ["default_transaction_read_only=on"])

        # 16 only: an owner that has REPLICATION itself may create the capture role (15: a superuser only)
        with managed.server.dba("postgres") as conn:
            conn.execute(sql.SQL("alter role {} replication").format(sql.Identifier(OWNER)))
        try:
            own = run_medallion("grant", "--capture-role", f"{capture}_own", "--pipeline-role", pipeline,
                                env=env, cwd=managed.folder)
        finally:
            with managed.server.dba("postgres") as conn:
                conn.execute(sql.SQL("alter role {} noreplication").format(sql.Identifier(OWNER)))
        if version == "16":
            assert own.returncode == 0 and f"created login role {capture}_own" in own.stdout, own.stderr
        else:
            assert "must be superuser to create replication users" in one_error_line(own)
        # a capture role's password: its creator may set it on 16 (ADMIN on it); on 15 only a superuser
        refusals = {"15": "must be superuser to alter replication roles or change replication attribute",
                    "16": "permission denied to alter role"}
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusals[version]):
            managed.owner(sql.SQL("alter role {} password 'chosen'").format(sql.Identifier(capture)))
        if version == "16":
            managed.owner(sql.SQL("alter role {} password 'chosen'").format(sql.Identifier(f"{capture}_own")))
    finally:
        drop_database(cluster, warehouse)
        execute(cluster.dsn("postgres"), sql.SQL("drop role if exists {}, {}, {}").format(
            sql.Identifier(pipeline), sql.Identifier(analyst), sql.Identifier(wh_owner)))


def test_the_no_ddl_trigger_note_can_be_accepted_once(managed: ManagedPipeline) -> None:
    """No superuser, no DDL trigger: prepare-source and ingest say that schema changes are dated at the
    table's next change, until medallion.toml accepts it; what bronze records is the same."""
    config = managed.folder / "medallion.toml"
    config.write_text('[capture]\ninclude = ["ops.*"]\n')
    managed.owner(OPS_SCHEMA)
    ok(managed.medallion("grant", as_owner=True))
    prepared = managed.medallion("prepare-source", as_owner=True)
    assert "no DDL trigger" in ok(prepared) and "accept_no_ddl_trigger = true" in prepared.stderr
    ok(managed.medallion("ingest"))
    managed.owner("alter table ops.customer add column tier int; update ops.customer set tier = 1 where code = 'c-1'")
    noted = ok(managed.medallion("ingest"))
    assert "ops.customer" in noted and "DDL trigger" in noted and "accept_no_ddl_trigger = true" in noted, noted

    config.write_text('[capture]\ninclude = ["ops.*"]\naccept_no_ddl_trigger = true\n')
    assert "DDL trigger" not in ok(managed.medallion("prepare-source", as_owner=True))
    managed.owner("alter table ops.customer add column rank int; update ops.customer set rank = 2 where code = 'c-2'")
    quiet = ok(managed.medallion("ingest"))
    assert "DDL trigger" not in quiet and "accept_no_ddl_trigger" not in quiet, quiet


def test_accept_no_ddl_trigger_must_be_true_or_false(tmp_path: Path) -> None:
    path = tmp_path / "medallion.toml"
    assert parse_config("[capture]\naccept_no_ddl_trigger = true\n", path).accept_no_ddl_trigger is True
    assert parse_config("", path).accept_no_ddl_trigger is False
    with pytest.raises(ConfigError, match=r"\[capture\] accept_no_ddl_trigger must be true or false, not 'yes'"):
        parse_config('[capture]\naccept_no_ddl_trigger = "yes"\n', path)
