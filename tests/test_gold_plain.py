"""Marts written as one plain SQL file each (`{{ config(materialized='gold_mart') }}` over
`ref('<silver name>')`), in the simplest project: a folder with dbt_project.yml and model files.

On a schema made here (a text key, a composite key, a dimension), with marts on the delta path
(kept per group from the changed rows: sums and counts, min/max/count(distinct) per value, a left
join, a UNION ALL, aggregates in CTEs joined after the aggregation) and on the touched-group
recompute path (a float sum, sum(distinct)), after each burst of inserts, updates (one moving a sale to another group, one in the dimension only) and deletes, built
incrementally by `medallion run`, the mart equals the same SQL run on the source; a full refresh
gives the same; `<mart>_as_of(t)` equals the source's answer at t and `_as_of(now(), known => k)`
the mart as built at k. A construct the engine cannot maintain is named in the build's output;
a mart reading silver through a relation it cannot trace fails in one line naming it.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from medallion.query import run_query
from medallion.settings import Settings
from support import environment, execute, medallion, one_error_line, query

SCHEMA = """
create schema sales;
create table sales.store (store_id integer primary key, region_code text not null, city text);
create table sales.sale (sale_id bigint primary key, store_id integer not null, customer text not null,
                         amount numeric(10,2) not null, sold_at timestamptz not null, status text not null);
create table sales.refund (region char(2), refund_no integer, sale_id bigint not null, amount numeric(10,2),
                           primary key (region, refund_no));
insert into sales.store values (1, 'north', 'Oslo'), (2, 'north', 'Bergen'), (3, 'south', 'Rome');
insert into sales.sale values
    (1, 1, 'ann', 10.00, '2026-01-05 10:00+00', 'ok'), (2, 2, 'bob', 20.00, '2026-01-06 10:00+00', 'ok'),
    (3, 3, 'ann', 30.00, '2026-01-07 10:00+00', 'ok'), (4, 3, 'cy', 5.50, '2026-02-01 10:00+00', 'void'),
    (5, 1, 'bob', 7.25, '2026-02-02 10:00+00', 'ok');
insert into sales.refund values ('EU', 1, 2, 5.00);
"""

MART = """select
    st.region_code as "Region",
    (date_trunc('month', s.sold_at at time zone 'UTC'))::date as month,
    sum(s.amount) as revenue,
    count(*) as sales,
    avg(s.amount) as avg_amount,
    min(s.amount) as smallest,
    max(s.amount) as largest,
    count(distinct s.customer) as customers,
    count(r.refund_no) as refunds,
    sum(r.amount) as refunded
from {sale} as s
join {store} as st on st.store_id = s.store_id
left join {refund} as r on r.sale_id = s.sale_id
where s.status <> 'void'
group by st.region_code, (date_trunc('month', s.sold_at at time zone 'UTC'))::date
"""

# on the delta path (one aggregating SELECT, inner joins, sum/count/avg/FILTER): kept per group in
# <mart>__state from the changed rows; HAVING hides a group the state keeps
DELTA_MART = """select
    st.region_code as region,
    s.customer,
    sum(s.amount) as revenue,
    count(*) as sales,
    avg(s.amount) as avg_amount,
    count(*) filter (where s.amount >= 10) as big_sales,
    round(sum(s.amount) / count(*), 3) + count(st.city) as mixed
from {sale} as s
join {store} as st on st.store_id = s.store_id
where s.status <> 'void'
group by st.region_code, s.customer
having sum(s.amount) > 2
"""

# three relations, a sum of only NULLs (it stays NULL), a filter on the dimension
REFUND_MART = """select
    r.region,
    sum(r.amount) as refunded,
    count(*) as refunds,
    count(r.amount) as with_amount,
    avg(r.amount) as avg_refund,
    sum(s.amount) - coalesce(sum(r.amount), 0) as kept
from {refund} as r
join {sale} as s on s.sale_id = r.sale_id
join {store} as st on st.store_id = s.store_id
where st.city is not null
group by r.region
"""

# a sum over a float: not exact under subtraction, so the touched groups are recomputed
FLOAT_MART = """select st.region_code as region, sum(s.amount::float8) as total, count(*) as sales
from {sale} as s
join {store} as st on st.store_id = s.store_id
group by 1
"""

# a UNION ALL of two relations' rows under one aggregate: a change reaches the branch holding it
# (the other adds no line), and a change to a column the mart does not read (a sale's amount)
# leaves its lines as they were and touches no group
UNION_MART = """select a.region, count(distinct a.who) as people, count(*) as events
from (
    select st.region_code as region, s.customer as who
    from {sale} as s join {store} as st on st.store_id = s.store_id
    union all
    select st.region_code, s.customer
    from {refund} as r join {sale} as s on s.sale_id = r.sale_id join {store} as st on st.store_id = s.store_id
) as a
group by a.region
"""

# aggregates of the same grain in CTEs, joined after the aggregation (a full join): each block
# keeps its own state; max of a dimension's text and count(distinct) keep a count per value;
# st.City is the column city (unquoted, folded): a change to it must reach the mart
BLOCKS_MART = """with sold as (
    select st.region_code as region, count(*) as sales, max(st.City) as a_city,
           count(distinct s.customer) as buyers, min(s.sold_at) as first_sale
    from {sale} as s
    join {store} as st on st.store_id = s.store_id
    group by 1
),
refunded as (
    select r.region as region, sum(r.amount) as refunded, count(*) as refunds
    from {refund} as r
    group by 1
)
select region, coalesce(sold.sales, 0) as sales, sold.a_city, sold.buyers, sold.first_sale,
       refunded.refunded, coalesce(refunded.refunds, 0) as refunds
from sold
full join refunded using (region)
"""

# sum(distinct): not kept from the changed rows; its touched groups are recomputed
DISTINCT_SUM_MART = """select st.region_code as region, sum(distinct s.amount) as amounts
from {sale} as s
join {store} as st on st.store_id = s.store_id
group by 1
"""

PLAIN_MARTS = {"sales_by_region_month": MART, "sales_by_region_customer": DELTA_MART,
               "refunds_by_region": REFUND_MART, "float_by_region": FLOAT_MART, "people_by_region": UNION_MART,
               "by_region_blocks": BLOCKS_MART, "distinct_sums": DISTINCT_SUM_MART}

FULL_MART = """{{ config(materialized='gold_mart') }}
select store_id, sum(amount) over (partition by store_id) as running from {{ ref('sales__sale') }}
"""

STEPS = [
    ["insert into sales.sale values (6, 2, 'dee', 12.00, '2026-02-03 10:00+00', 'ok'), "
     "(7, 3, 'ann', 1.00, '2026-03-01 10:00+00', 'ok'), (8, 3, 'eve', 2.50, '2026-03-02 10:00+00', 'ok'), "
     "(10, 1, 'fay', 1.50, '2026-03-03 10:00+00', 'ok')",
     "insert into sales.refund values ('US', 1, 6, 2.00), ('JP', 1, 1, null)"],
    # a sale moved to another month and store (another group), a dimension-only change (a store
    # moves region), a void that filters a sale out, an update to a refund; eve's only sale
    # deleted (her group vanishes), fay's group passes HAVING, JP's refund gets an amount
    ["update sales.sale set sold_at = '2026-03-09 10:00+00', store_id = 3 where sale_id = 1",
     "update sales.store set region_code = 'south' where store_id = 2",
     "update sales.sale set status = 'void' where sale_id = 5",
     "update sales.refund set amount = 4.00 where region = 'EU' and refund_no = 1",
     "delete from sales.sale where sale_id = 8",
     "update sales.sale set amount = 4.00 where sale_id = 10",
     "update sales.refund set amount = 3.00 where region = 'JP'",
     "update sales.store set city = 'Milan' where store_id = 3"],
    # deletes: the only sale of a group, a refund, a store's key change; eve comes back; JP's
    # only refund has no amount again (its sum is NULL, not 0)
    ["delete from sales.sale where sale_id = 7",
     "delete from sales.refund where region = 'US'",
     "update sales.sale set amount = amount + 1 where store_id = 3",
     "insert into sales.store values (4, 'east', null)",
     "update sales.sale set store_id = 4 where sale_id = 3",
     "insert into sales.sale values (9, 3, 'eve', 3.00, '2026-03-04 10:00+00', 'ok')",
     "update sales.refund set amount = null where region = 'JP'"],
]


def _project(root: Path, extra: dict[str, str] | None = None) -> None:
    files = {
        "dbt_project.yml": 'name: plain_gold\nversion: "0.1.0"\nconfig-version: 2\n'
                           'models:\n  plain_gold:\n    +schema: gold\n',
        "models/running_by_store.sql": FULL_MART,
    }
    for name, text in PLAIN_MARTS.items():
        files[f"models/{name}.sql"] = "{{ config(materialized='gold_mart') }}\n" + text.format(
            sale="{{ ref('sales__sale') }}", store="{{ ref('sales__store') }}", refund="{{ ref('sales__refund') }}")
    files.update(extra or {})
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def test_a_plain_sql_mart_follows_the_source_and_travels_in_time(blank_settings: Settings, tmp_path: Path) -> None:
    _project(tmp_path / "plain_gold")
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["sales.*"]\n[transform]\ndbt_project = "plain_gold"\n', encoding="utf-8")
    settings = replace(blank_settings, config_path=config)
    env = environment(settings)
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    execute(src, SCHEMA)
    assert medallion("prepare-source", env=env).returncode == 0
    on_source = {name: text.format(sale="sales.sale", store="sales.store", refund="sales.refund") + " order by 1, 2"
                 for name, text in PLAIN_MARTS.items()}
    marts = {name: f"select * from gold.{name} order by 1, 2" for name in PLAIN_MARTS}

    seen: list[tuple[str, dict]] = []  # (source time after the step, the source's answers)
    built: list[tuple[str, dict]] = []  # (warehouse time after the build, the marts)
    outputs = []
    for number, step in enumerate([[]] + STEPS):
        for statement in step:
            execute(src, statement)
        ran = medallion("run", env=env)
        assert ran.returncode == 0, ran.stderr
        outputs.append(ran.stdout + ran.stderr)
        # (after the run: the first one takes the initial snapshot, before which silver knows nothing)
        seen.append((str(query(src, "select now()")[0][0]), {n: query(src, q) for n, q in on_source.items()}))
        for name in PLAIN_MARTS:
            assert query(wh, marts[name]) == seen[-1][1][name], f"{name} after step {number}"
        built.append((str(query(wh, "select now()")[0][0]), {n: query(wh, q) for n, q in marts.items()}))
    # the construct that forces a full build is named in the build's output; which path each
    # mart takes, on its full (first) build only
    assert "running_by_store is built in full at every build: its SQL has a window function" in outputs[-1]
    assert "sales_by_region_customer follows its changed rows" in outputs[0]
    assert "refunds_by_region follows its changed rows" in outputs[0]
    for name in ("sales_by_region_month", "people_by_region", "by_region_blocks"):
        assert f"{name} follows its changed rows" in outputs[0], name
    assert "distinct_sums recomputes the groups a change touches: its SQL has sum(distinct)" in outputs[0]
    assert ("float_by_region recomputes the groups a change touches: its SQL has a sum over double precision"
            in outputs[0])
    assert not any("follows its changed rows" in out or "recomputes the groups" in out for out in outputs[1:])
    # the groups that vanished and came back, the sum of only NULLs, the group HAVING hid then showed
    assert ("south", "eve") in {row[:2] for row in built[-1][1]["sales_by_region_customer"]}
    assert ("south", "eve") not in {row[:2] for row in built[2][1]["sales_by_region_customer"]}
    assert ("north", "fay") not in {row[:2] for row in built[1][1]["sales_by_region_customer"]}
    assert [row[1:3] for row in built[-1][1]["refunds_by_region"] if row[0] == "JP"] == [(None, 1)]
    assert [row[1] for row in built[2][1]["refunds_by_region"] if row[0] == "JP"] != [None]

    step_sql = dict(query(wh, "select model, step_sql from medallion.follow_step where layer = 2"))
    assert "gold_changed_keys" in step_sql["gold.sales_by_region_month"]
    # a recompute touches the groups whose lines differ now from as last seen, not every group a key reaches
    assert "except all" in step_sql["gold.distinct_sums"]
    # the columns a change or a group travels through are indexed on silver (now and history):
    # the join columns, and a grain column of one relation (a store's region)
    indexes = [row[0] for row in query(wh, "select indexdef from pg_indexes where schemaname = 'silver' "
                                           "and tablename like 'sales\\_\\_%\\_hist'")]
    assert any(d.startswith("CREATE INDEX") and d.endswith("(store_id)") and "sales__sale_hist" in d for d in indexes)
    assert any(d.endswith("(sale_id)") and "sales__refund_hist" in d for d in indexes), indexes
    assert any(d.endswith("(region_code)") and "sales__store_hist" in d for d in indexes), indexes
    assert "on conflict" in step_sql["gold.sales_by_region_customer"]  # the state moved by the changed rows
    assert "on conflict" not in step_sql["gold.float_by_region"]
    # a change to a column no line reads (a sale's amount, for people_by_region) looks no line up
    assert "gold_keys_" in step_sql["gold.people_by_region"]
    # gold keeps no per-line bookkeeping: the watermarks it saw, and per group (and per value of a
    # min/max/count(distinct)) the delta path's state, one set of tables per aggregating block
    assert query(wh, "select count(*) from pg_tables where tablename like '%basis'") == [(0,)]
    assert query(wh, "select tablename from pg_tables where schemaname = 'medallion' and tablename like '%state%' "
                     "order by 1") == [(f"gold__{name}",) for name in (
                         "by_region_blocks__state", "by_region_blocks__state_0_v1", "by_region_blocks__state_0_v2",
                         "by_region_blocks__state_0_v3", "by_region_blocks__state_1", "people_by_region__state",
                         "people_by_region__state_0_v1", "refunds_by_region__state", "sales_by_region_customer__state",
                         "sales_by_region_month__state", "sales_by_region_month__state_0_v1",
                         "sales_by_region_month__state_0_v2", "sales_by_region_month__state_0_v3")]

    for name in ("sales_by_region_month", "sales_by_region_customer", "by_region_blocks"):
        for at, expected in seen:
            got = query(wh, f"select * from gold.{name}_as_of('{at}') order by 1, 2")
            assert got == expected[name], (name, at)
        for at, expected in built:
            got = query(wh, f"select * from gold.{name}_as_of(now(), known => '{at}') order by 1, 2")
            assert got == expected[name], (name, at)

    # FOR SYSTEM_TIME on the mart, answered from its as-of function (and --known-at)
    at, expected = seen[-2]
    asked = run_query(settings, f"select * from gold.sales_by_region_month for system_time as of '{at}' as m "
                                "order by 1, 2")
    assert [tuple(map(str, row)) for row in asked.rows] == [tuple(map(str, row)) for row in expected["sales_by_region_month"]]
    k, then = built[-2]
    asked = run_query(settings, "select * from gold.sales_by_region_month for system_time as of now() order by 1, 2",
                      known_at_text=k)
    assert [tuple(map(str, row)) for row in asked.rows] == [tuple(map(str, row)) for row in then["sales_by_region_month"]]

    before = {name: query(wh, q) for name, q in marts.items()}
    rebuilt = medallion("build", "--full-refresh", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert {name: query(wh, q) for name, q in marts.items()} == before


def test_a_mart_over_a_relation_the_engine_cannot_trace_fails_in_one_line(blank_settings: Settings,
                                                                         tmp_path: Path) -> None:
    _project(tmp_path / "plain_gold", {
        "models/sale_copy.sql": "{{ config(materialized='table') }}\nselect * from {{ ref('sales__sale') }}\n",
        "models/from_copy.sql": "{{ config(materialized='gold_mart') }}\n"
                                "select store_id, count(*) as n from {{ ref('sale_copy') }} group by store_id\n",
    })
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["sales.*"]\n[transform]\ndbt_project = "plain_gold"\n', encoding="utf-8")
    settings = replace(blank_settings, config_path=config)
    env = environment(settings)
    execute(settings.source_dsn or "", SCHEMA)
    assert medallion("prepare-source", env=env).returncode == 0
    ran = medallion("run", env=env)
    assert ran.returncode != 0
    line = one_error_line(ran)
    assert "from_copy reads model sale_copy" in line and "cannot trace" in line, line


VIEW = "{{ config(materialized='view') }}\nselect store_id, count(*) as sales from {{ ref('sales__sale') }} group by 1\n"


def test_dbt_build_run_by_hand_in_your_project_builds_silver_and_gold(blank_settings: Settings,
                                                                    tmp_path: Path) -> None:
    """Your dbt project is dbt's root: after `medallion dbt-setup`, `dbt build` run there (the
    venv's dbt, the profile `medallion env --dbt` exports) builds silver and gold, a view beside
    the marts included, and the next `medallion build` runs what it stored without dbt."""
    own = tmp_path / "plain_gold"
    _project(own, {"models/sales_per_store.sql": VIEW})
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["sales.*"]\n[transform]\ndbt_project = "plain_gold"\n', encoding="utf-8")
    settings = replace(blank_settings, config_path=config)
    env = {**environment(settings), "COLUMNS": "1000"}
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    execute(src, SCHEMA)
    assert medallion("prepare-source", env=env).returncode == 0
    assert medallion("ingest", env=env).returncode == 0
    setup = medallion("dbt-setup", env=env)
    assert setup.returncode == 0, setup.stderr
    local = [entry["local"] for entry in yaml.safe_load((own / "packages.yml").read_text(encoding="utf-8"))["packages"]]
    assert len(local) == 2 and all((own / path / "dbt_project.yml").is_file() for path in local), local
    assert (own / "dbt_packages" / "medallion_silver" / "models" / "silver").is_dir()
    first = medallion("build", env=env)  # the first build computes the marts whole
    assert first.returncode == 0, first.stderr

    on_source = MART.format(sale="sales.sale", store="sales.store", refund="sales.refund") + " order by 1, 2"
    mart = "select * from gold.sales_by_region_month order by 1, 2"
    per_store = "select store_id, count(*) from {} group by 1 order by 1"
    for statement in STEPS[0]:
        execute(src, statement)
    assert medallion("ingest", env=env).returncode == 0
    dbt = Path(sys.executable).parent / "dbt"
    ran = subprocess.run(["bash", "-c", f'eval "$({sys.executable} -m medallion.cli env --dbt)" && '
                                        f'"{dbt}" build --project-dir "{own}"'],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr
    assert "Completed successfully" in ran.stdout, ran.stdout[-2000:]
    assert query(wh, mart) == query(src, on_source)
    assert query(wh, "select * from gold.sales_per_store order by 1") == query(src, per_store.format("sales.sale"))
    # dbt built the silver package's models in silver, the marts in gold (not silver_gold)
    assert query(wh, "select count(*) from pg_namespace where nspname like 'silver\\_%'") == [(0,)]

    for statement in STEPS[1]:
        execute(src, statement)
    assert medallion("ingest", env=env).returncode == 0
    after = medallion("build", env=env)
    assert after.returncode == 0, after.stderr
    assert "without starting dbt" in after.stdout.strip().splitlines()[-1], after.stdout
    assert query(wh, mart) == query(src, on_source)
    assert query(wh, "select * from gold.sales_per_store order by 1") == query(src, per_store.format("sales.sale"))
