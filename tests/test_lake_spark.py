"""The same bronze gives the same silver and gold on both engines (one test, to fit CI).

One source holds Pagila (the tables gold reads) and a non-Pagila schema (shop: composite and
text keys, uuid, bytea, arrays, enums, json, char(n), a partitioned table, a name with spaces).
Bronze is exported to Iceberg; PostgreSQL builds silver and gold in the warehouse, Spark (local,
in-process, one JVM for the whole session) builds them from the lake into Iceberg tables. Every
silver history (sys_known_from/_to included), current relation and gold mart must have the same
fingerprint (md5 of its rows, normalised as medallion/spark/fingerprint.py documents):

1. after the initial load;
2. after a burst, built incrementally on both: Pagila's simulated activity, shop's updates, key
   changes, deletes and a truncate, schema changes (ADD COLUMN with a default, RENAME COLUMN, a
   widening type change, DROP COLUMN), then a lost slot and a re-sync (an epoch), then more
   changes: one build applies the changes, the schema events and the epoch in stream order.

`medallion query` gives the same answer text on both engines, with --known-at too.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from medallion import pipeline
from medallion.settings import Settings
from medallion.spark.fingerprint import differences
from pagila_example import api as example
from lake_support import with_lake
from support import execute
from test_any_database import SHOP_SCHEMA, SHOP_STEPS

pytest.importorskip("pyspark")
pytestmark = pytest.mark.file_seconds(110)

# Pagila's tables that gold reads (the other ten build the same way; a full run is make bench's),
# with the rentals and payments of its first months only: small data, for CI's time
PAGILA_TABLES = ("public.film", "public.inventory", "public.rental", "public.payment")
SMALLER_PAGILA = [
    "delete from payment where payment_date >= '2022-06-01' or rental_id in "
    "(select rental_id from rental where rental_date >= '2022-06-01')",
    "delete from rental where rental_date >= '2022-06-01'",
]


def lake_settings(settings: Settings, folder: Path) -> Settings:
    """settings with a [lake] and a selection of Pagila's gold tables plus the shop schema."""
    lake = with_lake(settings, folder)
    path = lake.config_path
    assert path is not None
    include = ", ".join(f'"{t}"' for t in (*PAGILA_TABLES, "shop.*"))
    # shop.order_lines is left out: its composite key is covered by shop.orders (CI time)
    path.write_text(path.read_text(encoding="utf-8").replace(
        'include = ["public.*"]', f'include = [{include}]\nexclude = ["shop.order_lines"]'), encoding="utf-8")
    return lake


def assert_engines_agree(settings: Settings) -> int:
    from medallion.lake.target import lake_target
    from medallion.spark.session import spark_session

    with psycopg.connect(settings.warehouse_dsn or "", options="-c TimeZone=UTC") as conn:
        compared, differing = differences(conn, spark_session(lake_target(settings)))
    assert not differing, "\n".join(differing)
    return compared


def build_both(settings: Settings, tests: bool = True) -> None:
    pipeline.run(settings)  # ingest, export to the lake, build on PostgreSQL
    pipeline.build(settings, engine="spark", tests=tests)


SCHEMA_CHANGES = [
    "alter table shop.products add column color text not null default 'black'",
    "alter table shop.customers rename column email to mail",
    "alter table shop.orders alter column total type numeric(14,3)",
    "update shop.customers set mail = 'ann@new.example' where customer_code = 'C-1'",
    "insert into shop.products (sku, title, price, color) values ('00000000-0000-0000-0000-000000000002', 'Chair', 5, 'red')",
    "alter table shop.customers drop column mail",  # (a text column: see the report on arrays)
]
AFTER_RESYNC = [
    "update shop.products set color = 'blue' where title = 'Desk'",
    "update film set rental_rate = rental_rate + 1 where film_id <= 3",
]


def lose_slot_and_resync(settings: Settings) -> None:
    """The slot is dropped (changes made meanwhile are lost), then 'medallion resync' takes an epoch."""
    src = settings.source_dsn or ""
    execute(src, "select pg_drop_replication_slot(%s)", [settings.slot])
    execute(src, "update shop.orders set status = 'paid' where order_id = 1001")  # in the gap
    execute(src, "delete from shop.\"Order Notes\"")
    pipeline.resync(settings)


def test_same_bronze_same_silver_and_gold_on_both_engines(settings: Settings, tmp_path: Path) -> None:
    lake = lake_settings(settings, tmp_path / "lake")
    src = lake.source_dsn or ""
    for statement in SMALLER_PAGILA:
        execute(src, statement)
    execute(src, SHOP_SCHEMA)
    for statement in SHOP_STEPS[0]:
        execute(src, statement)
    pipeline.prepare_source(lake)
    build_both(lake, tests=False)  # (Spark's history tests run once, after the burst: CI time)
    assert assert_engines_agree(lake) >= 20  # 4 + 5 histories, their current relations, 3 marts
    known = datetime.now(timezone.utc).isoformat(sep=" ")

    example.simulate(lake, seed=7, transactions=30, rate=None)
    for step in SHOP_STEPS[1:]:
        for statement in step:
            execute(src, statement)
    execute(src, "truncate shop.events")
    for statement in SCHEMA_CHANGES:
        execute(src, statement)
    pipeline.ingest(lake)
    lose_slot_and_resync(lake)
    for statement in AFTER_RESYNC:
        execute(src, statement)
    build_both(lake)  # incremental on both: changes, schema events and the epoch in stream order
    assert_engines_agree(lake)
    assert_same_answers(lake, known)


QUESTIONS = [
    # a film's whole history, the current rows as of the earliest start, a shop table, a mart
    "select film_id, title, rental_rate, sys_start, sys_end from silver.dim_film_hist "
    "for system_time all where film_id in (1, 2, 3) order by film_id, sys_start",
    "select f.film_id, f.rental_rate from silver.dim_film_hist for system_time as of "
    "(select min(sys_start) from silver.dim_film_hist) as f where f.film_id <= 5 order by 1",
    "select sku, title, price, color, sys_start, sys_end from silver.shop__products_hist for system_time all "
    "order by sku, sys_start",
    "select store_id, month, revenue, payments from gold.vw_monthly_revenue order by store_id, month",
]


def assert_same_answers(settings: Settings, known: str) -> None:
    """medallion query prints the same text on both engines, in every format, with --known-at too."""
    from medallion.query import to_csv, to_json

    for question in QUESTIONS:
        on_postgres = pipeline.query(settings, question)
        on_spark = pipeline.query(settings, question, engine="spark")
        assert to_csv(on_spark) == to_csv(on_postgres), question
        assert to_json(on_spark) == to_json(on_postgres), question
    as_known = QUESTIONS[0].replace("for system_time all", "for system_time as of now()")
    on_postgres = pipeline.query(settings, as_known, known_at=known)
    on_spark = pipeline.query(settings, as_known, known_at=known, engine="spark")
    assert to_csv(on_spark) == to_csv(on_postgres)
