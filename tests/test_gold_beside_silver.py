"""A mart's follow step while silver moves under it (`run --follow` applies silver in one thread
and gold in another): the step reads silver exactly as of the watermarks it captured, so a change
silver applies meanwhile is counted once, by the next step, not by both.

Made deterministic with a lock: a transaction holds silver's tables while it applies silver's next
stretch; the mart's step captures its stretch, then waits on that lock; silver commits; the step
goes on. Seen in CI before the fix: a follower's vw_monthly_revenue one payment above a full refresh.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg

from medallion import steps
from medallion.settings import Settings
from support import environment, execute, medallion, query

SCHEMA = """
create schema shop;
create table shop.store (store_id integer primary key, region text not null);
create table shop.sale (sale_id bigint primary key, store_id integer not null, amount numeric(10,2) not null);
insert into shop.store values (1, 'north'), (2, 'south');
insert into shop.sale values (1, 1, 10.00), (2, 1, 20.00), (3, 2, 30.00);
"""

# the delta path (sums and counts kept per group) and the recompute path (count distinct)
MARTS = {
    "revenue_by_region": """select st.region, sum(s.amount) as revenue, count(*) as sales
from {sale} as s join {store} as st on st.store_id = s.store_id
group by st.region""",
    "amounts_by_region": """select st.region, count(distinct s.amount) as amounts, sum(s.amount) as revenue
from {sale} as s join {store} as st on st.store_id = s.store_id
group by st.region""",
}


def _layer(wh: str, layer: int) -> list[steps.Step]:
    with psycopg.connect(wh) as conn:
        return [step for step in steps.load_steps(conn) if step.layer == layer]


def _apply_silver(conn: psycopg.Connection, silver: list[steps.Step]) -> None:
    for step in silver:
        steps.apply_silver(conn, step)


def _shop_project(blank: Settings, folder: Path) -> tuple[Settings, dict[str, str]]:
    """The shop schema on the source, prepared; a project folder of plain marts; its settings and environment."""
    files = {"shop_gold/dbt_project.yml": 'name: shop_gold\nversion: "0.1.0"\nconfig-version: 2\n'
                                          'models:\n  shop_gold:\n    +schema: gold\n',
             "medallion.toml": '[capture]\ninclude = ["shop.*"]\n[transform]\ndbt_project = "shop_gold"\n'}
    files |= {f"shop_gold/models/{name}.sql": "{{ config(materialized='gold_mart') }}\n"
              + text.format(sale="{{ ref('shop__sale') }}", store="{{ ref('shop__store') }}")
              for name, text in MARTS.items()}
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    settings = replace(blank, config_path=folder / "medallion.toml")
    env = environment(settings)
    execute(settings.source_dsn or "", SCHEMA)
    assert medallion("prepare-source", env=env).returncode == 0
    return settings, env


def test_a_mart_step_counts_a_change_silver_applies_meanwhile_once(blank_settings: Settings, tmp_path: Path) -> None:
    settings, env = _shop_project(blank_settings, tmp_path)
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    for _ in range(2):  # the first build is a full one; the second stores every incremental step
        execute(src, "update shop.sale set amount = amount where sale_id = 3")
        ran = medallion("run", env=env)
        assert ran.returncode == 0, ran.stderr
    silver, gold = _layer(wh, steps.SILVER), _layer(wh, steps.GOLD)
    assert {step.model for step in gold} == {f"gold.{name}" for name in MARTS}

    # a change silver has applied and gold not yet; then a second change to the same row, in
    # bronze only
    execute(src, "update shop.sale set amount = amount + 1 where sale_id = 2")
    assert medallion("ingest", env=env).returncode == 0
    with psycopg.connect(wh) as conn:
        _apply_silver(conn, silver)
    execute(src, "update shop.sale set amount = amount + 10, store_id = 2 where sale_id = 2")
    assert medallion("ingest", env=env).returncode == 0

    tables = [row[0] for row in query(wh, "select format('%I.%I', schemaname, tablename) from pg_tables "
                                          "where schemaname = 'silver' and tablename like 'shop\\_\\_%'")]
    with psycopg.connect(wh) as holder, psycopg.connect(wh) as applier:
        holder.execute(f"lock table {', '.join(tables)} in access exclusive mode")  # the mart waits on silver
        failures: list[BaseException] = []

        def apply_gold() -> None:
            try:
                for step in gold:  # the delta path: the recompute path recomputes groups from silver now
                    if step.model == "gold.revenue_by_region":
                        assert steps.apply_gold(applier, step) is None
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                failures.append(exc)

        thread = threading.Thread(target=apply_gold)
        thread.start()
        deadline = time.monotonic() + 60
        while not query(wh, "select count(*) from pg_locks where not granted")[0][0]:
            assert time.monotonic() < deadline, "the mart's step never waited on silver"
            time.sleep(0.05)
        _apply_silver(holder, silver)  # silver moves past the stretch the step captured
        holder.commit()
        thread.join(120)
        assert not failures, failures
        for step in gold:  # the next round: the stretch silver applied meanwhile
            assert steps.apply_gold(applier, step) is None
        applier.commit()

    for name, text in MARTS.items():
        expected = query(src, text.format(sale="shop.sale", store="shop.store") + " order by 1")
        assert query(wh, f"select * from gold.{name} order by 1") == expected, name
    assert query(wh, "select * from gold.revenue_by_region order by 1") == query(
        src, "select 'north', 10.00, 1 union all select 'south', 61.00, 2")
