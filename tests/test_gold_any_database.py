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
from test_any_database import SHOP_SCHEMA, SHOP_STEPS

PROJECT = {
    "dbt_project.yml": """
name: shop_gold
version: "0.1.0"
config-version: 2
model-paths: ["models"]
models:
  shop_gold:
    gold:
      +schema: gold
""",
    "models/gold/int_customer_lines.sql": """
select
    customer_code,
    coalesce(split_part(email, '@', 2), 'no mail') as "Mail Domain",
    tags as "Tags"
from {{ ref('shop__customers') }}
""",
    "models/gold/int_order_lines.sql": """
select
    o.region || '-' || o.order_id as "Order Key",
    (o.placed_at at time zone 'UTC')::date as "Day",
    o.total as "Total",
    o.status as "Status"
from {{ ref('shop__orders') }} as o
""",
    "models/gold/customers_by_domain.sql": """
{{ config(materialized='gold_mart', grain=['Mail Domain'],
          inputs=[{'lines': 'int_customer_lines', 'key': 'customer_code', 'fields': ['Tags'],
                   'changed_by': {'shop__customers': 'customer_code'}}]) }}
select "Mail Domain", count(*) as "Customers", sum(coalesce(cardinality("Tags"), 0)) as "Tags"
from {{ gold_input('int_customer_lines') }} as lines
where {{ gold_in_scope() }}
group by "Mail Domain"
""",
    "models/gold/orders_by_day.sql": """
{{ config(materialized='gold_mart', grain=['Day'],
          inputs=[{'lines': 'int_order_lines', 'key': 'Order Key', 'fields': ['Total', 'Status']}]) }}
select "Day", sum("Total") as "Total", count(*) filter (where "Status" = 'shipped') as "Shipped"
from {{ gold_input('int_order_lines') }} as lines
where {{ gold_in_scope() }}
group by "Day"
""",
}

FROM_SOURCE = {
    "customers_by_domain": "select coalesce(split_part(email, '@', 2), 'no mail'), count(*), "
                           "sum(coalesce(cardinality(tags), 0)) from shop.customers group by 1 order by 1",
    "orders_by_day": "select (placed_at at time zone 'UTC')::date, sum(total), "
                     "count(*) filter (where status = 'shipped') from shop.orders group by 1 order by 1",
}


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
    steps = dict(query(wh, "select model, step_sql from silver.follow_step where layer = 2"))
    assert "gold_changed_keys" in steps["gold.customers_by_domain"]
    assert "gold_changed_keys" not in steps["gold.orders_by_day"]

    before = schema_dump(wh, "gold")
    rebuilt = medallion("build", "--full-refresh", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert schema_dump(wh, "gold") == before
