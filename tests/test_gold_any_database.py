"""Gold marts of a project that is not Pagila, through the engine's gold_mart materialization.

A dbt project made here reads the order-processing schema of test_any_database: one mart over
customers (a text key that `changed_by` follows, so a build compares only the touched lines; an
array field), one over orders (a composite source key, so no `changed_by`: every line compared;
an enum field), with column names that need quoting. After the initial load and after each burst
of changes (key changes, deletes, updates in one transaction), built incrementally by
`medallion run`, each mart must equal the same aggregate computed from the source, and a
`--full-refresh` must give the same gold, basis included.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from medallion.settings import Settings
from support import environment, execute, medallion, query, schema_dump
from bench.shop import FROM_SOURCE, PROJECT, SHOP_SCHEMA, SHOP_STEPS


def test_marts_of_another_project_follow_the_source_and_equal_a_full_refresh(blank_settings: Settings,
                                                                            tmp_path: Path) -> None:
    for name, text in PROJECT.items():
        (tmp_path / "shop_gold" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "shop_gold" / name).write_text(text, encoding="utf-8")
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["shop.*"]\n[transform]\ndbt_project = "shop_gold"\n', encoding="utf-8")
    settings = replace(blank_settings, config_path=config)
    env = environment(settings)
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    execute(src, SHOP_SCHEMA)
    for statement in SHOP_STEPS[0]:
        execute(src, statement)
    assert medallion("prepare-source", env=env).returncode == 0

    for step in [[]] + SHOP_STEPS[1:]:
        for statement in step:
            execute(src, statement)
        ran = medallion("run", env=env)
        assert ran.returncode == 0, ran.stderr
        for mart, statement in FROM_SOURCE.items():
            assert query(wh, f'select * from gold.{mart} order by 1') == query(src, statement), mart

    # the text-keyed mart compared only the lines its changes touched; the other every line
    steps = dict(query(wh, "select model, step_sql from medallion.follow_step where layer = 2"))
    assert "gold_changed_keys" in steps["gold.customers_by_domain"]
    assert "gold_changed_keys" not in steps["gold.orders_by_day"]

    before = schema_dump(wh, "gold")
    rebuilt = medallion("build", "--full-refresh", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert schema_dump(wh, "gold") == before
