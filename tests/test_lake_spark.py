"""The same bronze gives the same silver and gold on both engines.

Bronze from PostgreSQL is exported to Iceberg; PostgreSQL builds silver and gold in the
warehouse, Spark (local, in-process) builds them from the lake into Iceberg tables. Every
silver history, current table and gold mart must have the same fingerprint (md5 of its rows,
normalised as medallion/spark/fingerprint.py documents) after the initial load and again after
a burst of changes, built incrementally on both. One SparkSession serves every test here (its
JVM starts once); each test has its own catalog name so that their lakes do not meet.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import psycopg
import pytest

from medallion import pipeline
from medallion.settings import Settings
from medallion.spark.fingerprint import postgres_fingerprint, spark_fingerprint
from lake_support import with_lake
from support import execute
from test_any_database import SHOP_SCHEMA, SHOP_STEPS

pytest.importorskip("pyspark")
_catalogs = itertools.count(1)


@pytest.fixture(scope="module")
def spark_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lake")


def lake_settings(settings: Settings, folder: Path, base: Path | None) -> Settings:
    """settings with [lake], a catalog of its own (the shared session keeps every catalog it loaded)."""
    lake = with_lake(settings, folder, base)
    path = lake.config_path
    assert path is not None
    path.write_text(path.read_text(encoding="utf-8") + f'catalog_name = "lake_{next(_catalogs)}"\n', encoding="utf-8")
    return lake


def compared_relations(settings: Settings) -> list[tuple[str, str]]:
    """Every silver table and view and every gold mart of the PostgreSQL target, without the engines'
    bookkeeping. Gold's line views are left out: their days_out is the same number at another
    scale on each engine (docs/scale-out.md); the marts that round it are compared."""
    with psycopg.connect(settings.warehouse_dsn or "") as conn:
        rows = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where (table_schema = 'silver' or (table_schema = 'gold' and table_type = 'BASE TABLE')) "
            "and table_name <> 'build_watermark' "
            "and table_name not like '%%\\_\\_basis' and table_name !~ '_p[0-9]{4}_[0-9]{2}$' "
            "order by 1, 2").fetchall()
    return [(schema, name) for schema, name in rows]


def assert_engines_agree(settings: Settings) -> int:
    from medallion.lake.target import lake_target
    from medallion.spark.session import spark_session

    session = spark_session(lake_target(settings))
    relations = compared_relations(settings)
    differing = []
    with psycopg.connect(settings.warehouse_dsn or "", options="-c TimeZone=UTC") as conn:
        for schema, name in relations:
            columns = [c for (c,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
                "order by ordinal_position", [schema, name]).fetchall()]
            on_postgres = postgres_fingerprint(conn, schema, name)
            on_spark = spark_fingerprint(session, schema, name, columns)
            if on_postgres != on_spark:
                differing.append(f"{schema}.{name}: postgres {on_postgres}, spark {on_spark}; "
                                 f"{first_difference(conn, session, schema, name, columns)}")
    assert not differing, "\n".join(differing)
    return len(relations)


def first_difference(conn: psycopg.Connection, session, schema: str, table: str, columns: list[str]) -> str:
    """The first rows only one engine has, for the failure message."""
    from medallion.spark.fingerprint import normalised_rows

    on_postgres, on_spark = normalised_rows(conn, session, schema, table, columns)
    only_postgres = sorted(set(on_postgres) - set(on_spark))[:3]
    only_spark = sorted(set(on_spark) - set(on_postgres))[:3]
    return f"only on postgres: {only_postgres}; only on spark: {only_spark}"


def build_both(settings: Settings) -> None:
    pipeline.run(settings)  # ingest, export to the lake, build on PostgreSQL
    pipeline.build(settings, engine="spark", tests=True)


def test_pagila_same_silver_and_gold_on_both_engines(settings: Settings, spark_home: Path) -> None:
    lake = lake_settings(settings, spark_home / "pagila", settings.config_path)
    build_both(lake)
    compared = assert_engines_agree(lake)
    assert compared >= 33  # 15 histories, 15 current relations, 3 marts

    pipeline.simulate(lake, seed=7, transactions=60, rate=None)
    build_both(lake)  # incremental on both
    assert_engines_agree(lake)
    assert_same_answers(lake)


QUESTIONS = [
    # a customer's whole history, as of the first version's start, and a join of two times
    "select customer_id, email, active, sys_start, sys_end from silver.dim_customer_hist "
    "for system_time all where customer_id in (1, 2, 3) order by customer_id, sys_start",
    "select c.customer_id, c.email from silver.dim_customer_hist for system_time as of "
    "(select min(sys_start) from silver.dim_customer_hist) as c where c.customer_id <= 5 order by 1",
    "select store_id, month, revenue, payments from gold.vw_monthly_revenue order by store_id, month",
]


def assert_same_answers(settings: Settings) -> None:
    """medallion query prints the same text on both engines, in every format."""
    from medallion.query import to_csv, to_json

    for question in QUESTIONS:
        on_postgres = pipeline.query(settings, question)
        on_spark = pipeline.query(settings, question, engine="spark")
        assert to_csv(on_spark) == to_csv(on_postgres), question
        assert to_json(on_spark) == to_json(on_postgres), question


def test_other_schema_same_silver_on_both_engines(blank_settings: Settings, spark_home: Path) -> None:
    (spark_home / "shop").mkdir(exist_ok=True)
    base = spark_home / "shop" / "base.toml"
    base.write_text('[capture]\ninclude = ["shop.*"]\n', encoding="utf-8")
    lake = lake_settings(blank_settings, spark_home / "shop", base)
    src = lake.source_dsn or ""
    execute(src, SHOP_SCHEMA)
    for statement in SHOP_STEPS[0]:
        execute(src, statement)
    pipeline.prepare_source(lake)
    build_both(lake)
    assert_engines_agree(lake)
    for step in SHOP_STEPS[1:]:
        for statement in step:
            execute(src, statement)
    execute(src, "truncate shop.events")
    build_both(lake)
    assert assert_engines_agree(lake) >= 8
