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

from dataclasses import replace
from pathlib import Path

from medallion.settings import Settings
from support import environment, execute, medallion, query, schema_dump
from test_any_database import SHOP_SCHEMA, SHOP_STEPS
from test_gold_any_database import FROM_SOURCE, PROJECT

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
    root = tmp_path / "shop_gold"
    for name, text in {**PROJECT, "tests/no_negative_totals.sql": NO_NEGATIVE_TOTALS}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["shop.*"]\n[transform]\ndbt_project = "shop_gold"\n', encoding="utf-8")
    return replace(blank_settings, config_path=config), root


def _start(settings: Settings) -> dict[str, str]:
    env = environment(settings)
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
    stored = [how for how in hows if STORED in how]
    assert len(stored) >= 3, hows  # the first build after the first (whole-table tests) starts dbt
    assert "tests passed" in stored[-1]

    # a schema change: what dbt compiled no longer fits, so dbt builds (and evolves the table)
    execute(src, "alter table shop.customers add column tier text default 'basic'")
    execute(src, "update shop.customers set tier = 'gold' where customer_code = 'C-5'")
    how = _build(env)
    assert "dbt:" in how and STORED not in how, how
    assert query(wh, "select tier from silver.shop__customers where customer_code = 'C-5'") == [("gold",)]
    _build(env)  # its tests covered whole tables; this one compiles them incrementally again
    execute(src, "update shop.customers set tier = 'silver' where customer_code = 'C-1'")
    assert STORED in _build(env)
    assert query(wh, "select tier from silver.shop__customers where customer_code = 'C-1'") == [("silver",)]

    before = {**schema_dump(wh, "silver"), **schema_dump(wh, "gold")}
    rebuilt = medallion("build", "--full-refresh", env=env)  # from the same bronze: no ingest before it
    assert rebuilt.returncode == 0 and "dbt: --full-refresh" in rebuilt.stdout, rebuilt.stderr
    after = {**schema_dump(wh, "silver"), **schema_dump(wh, "gold")}
    assert after.keys() == before.keys()
    for name in before:
        assert set(after[name]) ^ set(before[name]) == set(), name


def test_what_the_stored_statements_cannot_carry_goes_to_dbt(blank_settings: Settings, tmp_path: Path) -> None:
    settings, root = _project(tmp_path, blank_settings)
    env = _start(settings)
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    _build(env)
    execute(src, "update shop.orders set total = 3 where region = 'EU'")
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
    assert "dbt: the project changed" in _build(env)
    execute(src, "update shop.orders set total = 4 where region = 'EU'")
    assert STORED in _build(env)

    # a mart dropped by hand: its stored step fails, nothing half-applied, and dbt rebuilds it
    execute(wh, "drop table gold.orders_by_day")
    execute(src, "update shop.orders set total = 5 where region = 'EU'")
    how = _build(env)
    assert "dbt:" in how and "failed as stored" in how, how
    _marts_follow_the_source(settings)

    # --dbt: always dbt
    assert "dbt: --dbt" in _build(env, "--dbt")
