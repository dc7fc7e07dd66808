"""`medallion build` without starting dbt: the statements and compiled tests the last dbt build
stored, run when the project is unchanged (medallion/stored_build.py).

On a schema that is not Pagila (text and composite keys, a partitioned table, quoted names,
arrays, enums) with its own gold marts and a singular test: builds that ran the stored
statements must give what dbt gives (each mart equals the source's aggregate, and a
--full-refresh gives the same silver and gold), and whatever the stored statements cannot carry
must go to dbt: a schema change here; a changed project file, a table dropped by hand and a
failing test (it fails the build, naming it, as dbt build would, and its stretch stays untested)
in tests/test_stored_build_fallback.py, a file of its own so that `make test`'s two workers
share these tests.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.shop import FROM_SOURCE, SHOP_SCHEMA, SHOP_STEPS, change_sql, grow_sql, write_project
from medallion.settings import Settings
from medallion.stored_build import _longest_paths
from support import environment, execute, medallion, query, run_command, schema_dump

pytestmark = pytest.mark.file_seconds(140)

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


def _bookkeeping_tables(wh: str) -> list[str]:
    return [name for (name,) in query(wh, "select c.relname from pg_class as c join pg_namespace as n "
                                          "on n.oid = c.relnamespace where n.nspname = 'medallion' "
                                          "and c.relkind = 'r' order by 1")]


def _as_the_previous_version_left_it(wh: str) -> list[str]:
    """The engine's bookkeeping moved back where the previous version kept it: silver, and each
    mart's own tables (medallion.gold__<mart>__seen) beside the mart (gold.<mart>__seen). That
    version kept no per-group state (medallion.gold__<mart>__state): dropped, the next build
    makes it again."""
    kept = _bookkeeping_tables(wh)
    for name in kept:
        if name.endswith("__state"):
            execute(wh, f'drop table medallion."{name}"')
        elif name in ("build_watermark", "follow_step", "stored_build"):
            execute(wh, f"alter table medallion.{name} set schema silver")
        else:
            schema, own = name.split("__", 1)
            execute(wh, f'alter table medallion."{name}" set schema "{schema}"; '
                        f'alter table "{schema}"."{name}" rename to "{own}"')
    assert _bookkeeping_tables(wh) == []
    return kept


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

    # a warehouse the previous version built (bookkeeping in silver and beside each mart) goes on:
    # the next build moves it into the bookkeeping schema
    kept = _as_the_previous_version_left_it(wh)
    assert {"build_watermark", "follow_step", "stored_build"} < set(kept) and any(k.endswith("__seen") for k in kept)
    execute(src, "update shop.customers set tags = '{moved}' where customer_code = 'C-2'")
    how = _build(env)
    assert "dbt started: the first build of this warehouse" in how, how  # its stored build was not where it looks
    assert _bookkeeping_tables(wh) == sorted(kept)
    assert query(wh, "select count(*) from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
                     "where n.nspname in ('silver', 'gold') and (c.relname ~ '__(seen|basis)$' "
                     "or c.relname in ('build_watermark', 'follow_step', 'stored_build'))") == [(0,)]
    _marts_follow_the_source(settings)
    assert STORED in _build(env)

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


def _in_folder(folder: Path, env: dict[str, str], *args: str) -> str:
    """`medallion ARGS` run from the user's folder (its medallion.toml, no MEDALLION_CONFIG):
    its last line."""
    ran = run_command(list(args), env=env, cwd=str(folder))
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
    write_project(tmp_path, gold=False)  # (silver only: the marts' stored builds are the other tests')
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
    # each job's duration is kept for the next build without dbt, which starts the longest paths first
    durations = query(blank_settings.warehouse_dsn or "", "select plan -> 'durations' from medallion.stored_build")[0][0]
    assert durations and all(isinstance(seconds, (int, float)) for seconds in durations.values()), durations
    assert any(uid.startswith("model.") for uid in durations) and any(uid.startswith("test.") for uid in durations)


def test_the_jobs_on_the_longest_path_come_first() -> None:
    """_longest_paths: a job's priority is its duration plus its longest chain of dependents."""
    jobs: dict[str, tuple[list[str], object]] = {
        "dim": ([], None), "fact": ([], None), "fact_test": (["fact"], None),
        "current": (["fact_test"], None), "mart": (["current", "dim"], None)}
    found = _longest_paths(jobs, {"dim": 0.05, "fact": 0.4, "fact_test": 0.1, "current": 0.1, "mart": 0.5})
    assert found["fact"] > found["dim"] and round(found["fact"], 3) == 1.1 and round(found["dim"], 3) == 0.55
    assert _longest_paths(jobs, {})["fact"] == 0.0  # no durations yet: the plan's order
