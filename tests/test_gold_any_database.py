"""Gold marts of a project that is not Pagila, through the engine's gold_mart materialization.

A dbt project made here (bench/shop.py) reads the order-processing schema of test_any_database
through two plain single-file marts: one over customers (a text key; an array read), one over
orders (a composite key; an enum in a FILTER), with column names that need quoting. Both are on
the delta path: a build reads only the rows whose keys bronze changed (gold_changed_keys) and
moves the sums and counts kept per group (<mart>__state). After the initial load and after each
burst of changes (key changes, deletes, updates in one transaction), built incrementally by
`medallion run`, each mart must equal the same aggregate computed from the source, and a
`--full-refresh` must give the same gold and the same per-group state.
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

    # both marts, text key and composite key alike, read only the rows of the changed keys and
    # keep their groups' sums and counts in a state table, never the whole relation
    steps = dict(query(wh, "select model, step_sql from medallion.follow_step where layer = 2"))
    for mart in FROM_SOURCE:
        assert "gold_changed_keys" in steps[f"gold.{mart}"], mart
        assert f'."medallion"."gold__{mart}__state" as state' in steps[f"gold.{mart}"], mart

    def gold_and_state() -> dict[str, list[str]]:
        state = {name: rows for name, rows in schema_dump(wh, "medallion").items() if name.endswith("__state")}
        assert sorted(state) == sorted(f"gold__{mart}__state" for mart in FROM_SOURCE)
        return {**schema_dump(wh, "gold"), **state}

    before = gold_and_state()
    rebuilt = medallion("build", "--full-refresh", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert gold_and_state() == before
