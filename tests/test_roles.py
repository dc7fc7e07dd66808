"""Least privilege, on real roles: capture needs only REPLICATION and SELECT on the captured tables,
the pipeline's warehouse role owns bronze, silver and gold, and analysts (the login `medallion
query` uses) read silver and gold, their as-of functions included, and nothing else."""

from __future__ import annotations

import json
from dataclasses import replace

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from medallion import pipeline
from medallion.access import roles
from medallion.db import query_dsn
from medallion.settings import DEFAULT_ANALYST_ROLE, Settings
from medallion.source.cluster import EmbeddedCluster
from support import execute, medallion, one_error_line, query

CAPTURE, PIPELINE, ANALYST = roles.DEFAULT_CAPTURE_ROLE, roles.DEFAULT_PIPELINE_ROLE, DEFAULT_ANALYST_ROLE


def dbname(dsn: str | None) -> str:
    return str(conninfo_to_dict(dsn or "")["dbname"])


def rows(env: dict[str, str], statement: str) -> list[dict]:
    result = medallion("query", "--format", "json", statement, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


BOOKKEEPING = ("__seen", "__state", "build_watermark", "follow_step", "stored_build")


def test_minimal_roles_capture_build_and_read(settings: Settings, cli_env: dict[str, str],
                                              cluster: EmbeddedCluster) -> None:
    granted = medallion("grant", env=cli_env)  # cli_env's DSNs are the cluster's superuser: an admin
    assert granted.returncode == 0, granted.stderr
    assert f"{CAPTURE} may replicate and read 15 captured tables" in granted.stdout
    attributes = query(settings.source_dsn, "select rolname, rolsuper, rolreplication, rolcreaterole, rolcreatedb "
                                            "from pg_roles where rolname = any(%s) order by 1",
                       [[CAPTURE, PIPELINE, ANALYST]])
    assert attributes == [(ANALYST, False, False, False, False), (CAPTURE, False, True, False, False),
                          (PIPELINE, False, False, False, False)]

    src, wh = dbname(settings.source_dsn), dbname(settings.warehouse_dsn)
    env = dict(cli_env, MEDALLION_SOURCE_DSN=cluster.dsn(src, CAPTURE), MEDALLION_WAREHOUSE_DSN=cluster.dsn(wh, PIPELINE))
    first = medallion("ingest", env=env)
    assert first.returncode == 0 and "initial snapshot: " in first.stdout, first.stderr
    # the stream, and a table created after capture started (no grant on it: the stream needs none)
    execute(settings.source_dsn, "update customer set email = 'least@example.org' where customer_id = 1")
    execute(settings.source_dsn, "create table public.loyalty (loyalty_id int primary key, points int); "
                                 "alter table public.loyalty replica identity full; "
                                 "insert into public.loyalty values (1, 10), (2, 20)")
    streamed = medallion("ingest", env=env)
    assert streamed.returncode == 0 and "streamed: 3 changes" in streamed.stdout, streamed.stdout + streamed.stderr
    # the capture role may not write the source: one line, the traceback in MEDALLION_HOME's log
    line = one_error_line(medallion("simulate", "-n", "1", env=env))
    assert "PostgreSQL refused a statement: permission denied for table" in line and "errors.log" in line

    built = medallion("build", "--skip-tests", env=env)
    assert built.returncode == 0, built.stderr
    owners = query(settings.warehouse_dsn, "select nspname, pg_get_userbyid(nspowner) from pg_namespace "
                                           "where nspname in ('bronze', 'silver', 'gold', 'medallion') order by 1")
    assert owners == [("bronze", PIPELINE), ("gold", PIPELINE), ("medallion", PIPELINE), ("silver", PIPELINE)]

    # analysts: every relation and every as-of function of silver and gold, after the build
    with psycopg.connect(cluster.dsn(wh, ANALYST), autocommit=True) as conn:
        relations = conn.execute(
            "select format('%I.%I', n.nspname, c.relname) from pg_class as c join pg_namespace as n "
            "on n.oid = c.relnamespace where n.nspname in ('silver', 'gold') and c.relkind in ('r', 'p', 'v') "
            "and not c.relispartition order by 1").fetchall()
        functions = conn.execute(
            "select format('%I.%I', n.nspname, p.proname) from pg_proc as p join pg_namespace as n "
            "on n.oid = p.pronamespace where n.nspname in ('silver', 'gold') and p.proname like '%%_as_of' "
            "order by 1").fetchall()
        assert {("silver.dim_customer_hist",), ("silver.loyalty_hist",), ("gold.vw_monthly_revenue",)} <= set(relations)
        assert {("silver.dim_customer_as_of",), ("silver.loyalty_as_of",),  # one per history (loyalty: new)
                ("gold.monthly_revenue_as_of",), ("gold.top_titles_as_of",)} <= set(functions)
        assert len(functions) == 2 * (16 + 3)  # each as (ts) and as (ts, known)
        for (name,) in relations:
            conn.execute(f"select * from {name} limit 1")
        for (name,) in functions:
            conn.execute(f"select * from {name}(now()) limit 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from bronze.br_customer_cdc limit 1")  # bronze stays the pipeline's
        # the engine's bookkeeping is in a schema of its own, which analysts need not see; the
        # horizon and the histories' whole_from answer them all the same
        assert not [name for (name,) in relations if name.endswith(BOOKKEEPING)], relations
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from medallion.build_watermark limit 1")
        assert conn.execute("select silver.horizon() is not null").fetchone() == (True,)
        assert ("silver.dim_customer_hist", None) in conn.execute("select * from silver.whole_from()").fetchall()

    analyst_env = dict(env)  # medallion query: the warehouse DSN's server, as the analyst login
    assert rows(analyst_env, "select email from silver.dim_customer_as_of(now()) where customer_id = 1") == \
        [{"email": "least@example.org"}]
    assert rows(analyst_env, "select points from silver.loyalty_as_of(now()) order by 1") == \
        [{"points": 10}, {"points": 20}]
    assert rows(analyst_env, "select count(*) > 0 as some from gold.monthly_revenue_as_of(now())") == [{"some": True}]
    # what the pipeline creates between builds is readable too (default privileges)
    execute(cluster.dsn(wh, PIPELINE), "create table gold.adhoc as select 1 as answer")
    assert rows(analyst_env, "select answer from gold.adhoc") == [{"answer": 1}]


@pytest.fixture
def layered(settings: Settings) -> Settings:
    """A warehouse with one small silver history, granted to the analyst role as a build does."""
    execute(settings.warehouse_dsn or "", "create schema silver; create table silver.t_hist (id int, "
            "sys_start timestamptz not null, sys_end timestamptz not null default 'infinity'); "
            "insert into silver.t_hist values (1, '2026-01-01 00:00+00')")
    assert pipeline.grant_readers(settings) == []
    return settings


def test_query_is_a_login_of_its_own(layered: Settings, cli_env: dict[str, str]) -> None:
    assert rows(cli_env, "select current_user as u, session_user as s, count(*) as n from silver.t_hist") == \
        [{"u": ANALYST, "s": ANALYST, "n": 1}]


@pytest.mark.parametrize(("statement", "reason"), [
    ("insert into silver.t_hist (id, sys_start) values (2, now())", "cannot execute INSERT in a read-only transaction"),
    ("create table silver.x (a int)", "cannot execute CREATE TABLE in a read-only transaction"),
    ("copy (select 1) to program 'true'", "pg_execute_server_program role to COPY to or from an external program"),
    ("select pg_read_file('/etc/hostname')", "permission denied for function pg_read_file"),
])
def test_query_cannot_write_or_reach_the_server(layered: Settings, cli_env: dict[str, str], statement: str,
                                                reason: str) -> None:
    line = one_error_line(medallion("query", statement, env=cli_env))
    assert line.startswith("error: the warehouse rejected the query: ") and reason in line


def test_the_analyst_role_itself_refuses_writes(layered: Settings) -> None:
    """Even a session that turns read-only off (the statement could) has no privilege to write."""
    with psycopg.connect(query_dsn(layered), autocommit=True) as conn:
        conn.execute("set default_transaction_read_only = off")
        for statement in ("insert into silver.t_hist (id, sys_start) values (2, now())", "create table silver.x (a int)",
                          "copy (select 1) to program 'true'", "set role postgres", "drop table silver.t_hist"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_query_without_the_analyst_role_names_the_fix(layered: Settings, cli_env: dict[str, str]) -> None:
    line = one_error_line(medallion("query", "select 1", env=dict(cli_env, MEDALLION_ANALYST_ROLE="no_such_reader")))
    assert 'role "no_such_reader" does not exist' in line
    assert "'medallion grant'" in line and "MEDALLION_QUERY_DSN" in line
    note = pipeline.grant_readers(replace(layered, analyst_role="no_such_reader"))
    assert note and "no role no_such_reader on the warehouse" in note[0]


def test_query_dsn_is_the_warehouse_as_the_analyst_without_its_password() -> None:
    settings = Settings(home=__import__("pathlib").Path("/nonexistent"), slot="s", pagila_dir=None,
                        source_dsn="host=src dbname=shop user=cdc password=one",
                        warehouse_dsn="postgresql://etl:two@dwh:5433/lake?sslmode=require")
    assert conninfo_to_dict(query_dsn(settings)) == {"host": "dwh", "port": "5433", "dbname": "lake",
                                                     "user": ANALYST, "sslmode": "require"}
    own = replace(settings, query_dsn="host=dwh dbname=lake user=reader")
    assert query_dsn(own) == "host=dwh dbname=lake user=reader"
