"""`medallion build` without starting dbt: the statements and compiled tests the last dbt build
stored, run when the project is unchanged (medallion/stored_build.py).

On a schema that is not Pagila (text and composite keys, a partitioned table, quoted names,
arrays, enums) with its own gold marts and a singular test: builds that ran the stored
statements must give what dbt gives (each mart equals the source's aggregate, and a
--full-refresh gives the same silver and gold), and whatever the stored statements cannot carry
must go to dbt: a schema change, a changed project file, a table dropped by hand. A failing test
fails the build, naming it, as dbt build would, and its stretch stays untested.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from bench.shop import FROM_SOURCE, SHOP_SCHEMA, SHOP_STEPS, change_sql, grow_sql, write_project
from medallion.settings import Settings
from support import environment, execute, medallion, query, schema_dump

STORED = "without starting dbt"
NO_NEGATIVE_TOTALS = "select * from {{ ref('shop__orders') }} where total < 0\n"
BURSTS = [
    ["update shop.orders set total = total + 1 where region = 'EU'",
     "insert into shop.customers (customer_code, name, email) values ('C-5', 'Eve', 'eve@example.org')"],
    *SHOP_STEPS[1:],
    ["begin; insert into shop.orders values ('EU', 7, 'C-5', 'paid', '2026-02-02 02:00+00', 5.5); "
     "update shop.customers set tags = '{a,b,c}' where customer_code = 'C-5'; commit",
     "delete from shop.orders where region = 'EU' and order_id = 1"],
]


def _project(tmp_path: Path, blank_settings: Settings) -> tuple[Settings, Path]:
    config = write_project(tmp_path, {"tests/no_negative_totals.sql": NO_NEGATIVE_TOTALS})
    return replace(blank_settings, config_path=config), tmp_path / "shop_gold"


def _start(settings: Settings) -> dict[str, str]:
    env = {**environment(settings), "COLUMNS": "1000"}  # the build's line unwrapped
    execute(settings.source_dsn or "", SHOP_SCHEMA)
    for statement in SHOP_STEPS[0]:
        execute(settings.source_dsn or "", statement)
    assert medallion("prepare-source", env=env).returncode == 0
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    return env


def _build(env: dict[str, str], *args: str) -> str:
    assert medallion("ingest", env=env).returncode == 0
    built = medallion("build", *args, env=env)
    assert built.returncode == 0, built.stderr
    return built.stdout


def _marts_follow_the_source(settings: Settings) -> None:
    for mart, statement in FROM_SOURCE.items():
        assert query(settings.warehouse_dsn or "", f"select * from gold.{mart} order by 1") == \
            query(settings.source_dsn or "", statement), mart


def test_stored_builds_equal_dbt_and_a_full_refresh(blank_settings: Settings, tmp_path: Path) -> None:
    settings, _ = _project(tmp_path, blank_settings)
    env = _start(settings)
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""

    hows = []
    for burst in BURSTS:
        for statement in burst:
            execute(src, statement)
        hows.append(_build(env))
        _marts_follow_the_source(settings)
    assert all(STORED in how for how in hows[1:]), hows  # the first build's tests are stored for the stretch
    assert "tests passed" in hows[-1]

    # a schema change: what dbt compiled no longer fits, so dbt builds (and evolves the table)
    execute(src, "alter table shop.customers add column tier text default 'basic'")
    execute(src, "update shop.customers set tier = 'gold' where customer_code = 'C-5'")
    how = _build(env)
    assert "dbt started: bronze captured a new table or a schema change since the last build" in how, how
    assert query(wh, "select tier from silver.shop__customers where customer_code = 'C-5'") == [("gold",)]
    how = _build(env)  # its tests covered whole tables; this one compiles them for changed keys again
    assert "dbt started: the last build checked whole tables after a truncate, a re-sync or a schema change in " \
           "bronze (the test " in how, how
    execute(src, "update shop.customers set tier = 'silver' where customer_code = 'C-1'")
    assert STORED in _build(env)
    assert query(wh, "select tier from silver.shop__customers where customer_code = 'C-1'") == [("silver",)]

    before = {**schema_dump(wh, "silver"), **schema_dump(wh, "gold")}
    rebuilt = medallion("build", "--full-refresh", env=env)  # from the same bronze: no ingest before it
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "dbt started: --full-refresh rebuilds every table from bronze" in rebuilt.stdout
    after = {**schema_dump(wh, "silver"), **schema_dump(wh, "gold")}
    assert after.keys() == before.keys()
    for name in before:
        assert set(after[name]) ^ set(before[name]) == set(), name


def test_what_the_stored_statements_cannot_carry_goes_to_dbt(blank_settings: Settings, tmp_path: Path) -> None:
    settings, root = _project(tmp_path, blank_settings)
    env = _start(settings)
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    execute(src, "update shop.orders set total = 3 where region = 'EU'")
    how = _build(env)  # the tests are stored; a gold_mart's first build stores no step for a change
    assert "was built whole at the last build (its first build or a --full-refresh)" in how, how
    execute(src, "update shop.orders set total = 3.5 where region = 'EU'")
    assert STORED in _build(env)

    # a failing test fails the build, in one line naming it, and its stretch stays untested
    execute(src, "insert into shop.orders values ('EU', 8, 'C-1', 'new', '2026-01-09 09:00+00', -1)")
    assert medallion("ingest", env=env).returncode == 0
    failed = medallion("build", env=env)
    assert failed.returncode == 1 and "no_negative_totals" in failed.stderr, failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1 and "Traceback" not in failed.stderr
    untested = query(wh, "select model from silver.build_watermark where model like '%orders%' "
                         "and tested_to is distinct from last_commit_lsn")
    assert untested, "the failing stretch must be tested again by the next build"
    execute(src, "update shop.orders set total = 1 where region = 'EU' and order_id = 8")
    assert STORED in _build(env)
    assert not query(wh, "select model from silver.build_watermark where tested_to is distinct from last_commit_lsn")
    _marts_follow_the_source(settings)

    # any change to the project's files: dbt
    model = root / "models" / "gold" / "orders_by_day.sql"
    model.write_text("-- totals per day\n" + model.read_text(encoding="utf-8"), encoding="utf-8")
    how = _build(env, "--skip-tests")
    assert "dbt started: the project's files changed since the last build (models/gold/orders_by_day.sql)" in how
    how = _build(env)
    assert "dbt started: the last build ran no tests it could store (--skip-tests" in how, how
    execute(src, "update shop.orders set total = 4 where region = 'EU'")
    assert STORED in _build(env)
    assert "dbt started: --full-tests checks whole tables" in _build(env, "--full-tests")
    execute(src, "update shop.orders set total = 4.5 where region = 'EU'")
    assert STORED in _build(env)  # the tests stored before it are kept

    # a mart dropped by hand: its stored step fails, nothing half-applied, and dbt rebuilds it
    execute(wh, "drop table gold.orders_by_day")
    execute(src, "update shop.orders set total = 5 where region = 'EU'")
    how = _build(env)
    assert "dbt started: the stored statements of gold.orders_by_day failed (" in how, how
    assert "so dbt rebuilds it" in how, how
    _marts_follow_the_source(settings)

    # --dbt: always dbt
    assert "dbt started: asked for with --dbt" in _build(env, "--dbt")

    # a plain table beside the marts: refilled from its compiled SELECT, without dbt
    (root / "models" / "gold" / "plain.sql").write_text(
        "{{ config(materialized='table') }}\nselect region, count(*) as n from {{ ref('shop__orders') }} group by 1\n",
        encoding="utf-8")
    assert "(models/gold/plain.sql)" in _build(env)
    execute(src, "insert into shop.orders values ('US', 9, 'C-1', 'new', '2026-01-09 09:00+00', 2)")
    assert STORED in _build(env)
    assert query(wh, "select * from gold.plain order by 1") == \
        query(src, "select region, count(*) from shop.orders group by 1 order by 1")

    # a model only dbt refreshes: every build starts dbt, and its last line says which and why
    (root / "models" / "gold" / "grows.sql").write_text(
        "{{ config(materialized='incremental') }}\nselect 1 as one\n", encoding="utf-8")
    assert "(models/gold/grows.sql)" in _build(env)
    assert "dbt started: the model grows is materialized as incremental, which only dbt refreshes" in _build(env)


def _in_folder(folder: Path, env: dict[str, str], *args: str) -> str:
    """`medallion ARGS` run from the user's folder (its medallion.toml, no MEDALLION_CONFIG):
    its last line."""
    ran = subprocess.run([sys.executable, "-m", "medallion.cli", *args], env={**env, "COLUMNS": "1000"}, cwd=folder,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran.stdout.strip().splitlines()[-1]


def _silver_equals_the_source(settings: Settings) -> None:
    for table, columns in {"customers": "customer_code, name, email, tags", "orders": "region, order_id, "
                           "customer_code, status, placed_at, total", "\"Order Notes\"": '"Note ID", "Body"'}.items():
        silver = "silver." + ("\"shop__Order Notes\"" if "Notes" in table else f"shop__{table}")
        assert query(settings.warehouse_dsn or "", f"select {columns} from {silver} order by 1, 2") == \
            query(settings.source_dsn or "", f"select {columns} from shop.{table} order by 1, 2"), table


def test_the_nightly_run_after_a_small_change_starts_no_dbt(blank_settings: Settings, tmp_path: Path) -> None:
    """The nightly `medallion run` of a project that is not Pagila, from its folder: after the
    first build (and after a --full-refresh), a small change builds without starting dbt."""
    write_project(tmp_path, gold=False)  # (a gold_mart stores no step from a full build: see the other tests)
    env = environment(blank_settings)  # (no MEDALLION_CONFIG: the folder's medallion.toml)
    src = blank_settings.source_dsn or ""
    execute(src, SHOP_SCHEMA)
    for statement in SHOP_STEPS[0] + grow_sql(50):
        execute(src, statement)
    _in_folder(tmp_path, env, "prepare-source")
    first = _in_folder(tmp_path, env, "run")
    assert "dbt started: the first build of this warehouse stores what the next builds run without dbt" in first

    for statement in change_sql(10) + SHOP_STEPS[1]:
        execute(src, statement)
    second = _in_folder(tmp_path, env, "run")
    assert STORED in second and "tests passed" in second, second
    _silver_equals_the_source(blank_settings)

    full = _in_folder(tmp_path, env, "build", "--full-refresh")
    assert "dbt started: --full-refresh rebuilds every table from bronze" in full, full
    for statement in change_sql(5) + SHOP_STEPS[2]:
        execute(src, statement)
    after = _in_folder(tmp_path, env, "run")
    assert STORED in after and "tests passed" in after, after
    _silver_equals_the_source(blank_settings)
