"""A living source: the seeded simulator and Pagila at scale."""

from __future__ import annotations

from psycopg import sql

from medallion import pipeline
from pagila_example.pagila import TABLES as PAGILA_TABLES
from medallion.settings import Settings
from medallion.source.cluster import EmbeddedCluster
from pagila_example import api as example
from support import create_database, drop_database, query

TEMPLATE_DB = "pagila_template"


def contents(dsn: str) -> dict[str, list[tuple]]:
    """Every captured table, ordered, without last_update (Pagila's triggers set it to now())."""
    dump = {}
    for table in PAGILA_TABLES:
        columns = [c for (c,) in query(dsn, "select column_name from information_schema.columns "
                                            "where table_schema = 'public' and table_name = %s "
                                            "and column_name <> 'last_update' order by ordinal_position", [table])]
        listed = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        statement = sql.SQL("select {} from {} order by {}").format(listed, sql.Identifier(table), listed)
        dump[table] = query(dsn, statement)
    return dump


def test_same_seed_on_fresh_sources_gives_identical_contents(settings: Settings, cluster: EmbeddedCluster) -> None:
    other = "src_twin"
    other_dsn = create_database(cluster, other, TEMPLATE_DB)
    try:
        first = example.simulate(settings, seed=3, transactions=150, rate=None)
        twin = example.simulate(Settings(settings.home, other_dsn, settings.warehouse_dsn, settings.slot,
                                          settings.pagila_dir), seed=3, transactions=150, rate=None)
        assert first.kinds == twin.kinds
        assert contents(settings.source_dsn) == contents(other_dsn)
        different = example.simulate(Settings(settings.home, other_dsn, settings.warehouse_dsn, settings.slot,
                                               settings.pagila_dir), seed=4, transactions=20, rate=None)
        assert different.transactions == 20
        assert contents(settings.source_dsn) != contents(other_dsn)
    finally:
        drop_database(cluster, other)


def test_simulate_against_the_spine_creates_partitions_and_reaches_bronze(settings: Settings) -> None:
    pipeline.ingest(settings)
    report = example.simulate(settings, seed=1, transactions=200, rate=None)
    assert report.transactions == 200
    assert {"rent", "return", "customer_change", "film_change"} <= set(report.kinds)
    assert report.partitions_created == ["payment_p2022_08"]
    pipeline.ingest(settings)
    new_payments = query(settings.warehouse_dsn,
                         "select count(*) from bronze.br_payment_cdc where source_table = 'public.payment_p2022_08'")
    source_payments = query(settings.source_dsn, "select count(*) from payment_p2022_08")
    assert new_payments == source_payments and source_payments[0][0] > 0
    identity = query(settings.source_dsn, "select relreplident from pg_class where relname = 'payment_p2022_08'")
    assert identity == [("f",)]


def test_scale_factor_two_doubles_rentals_and_payments_with_valid_keys(settings: Settings) -> None:
    report = example.scale(settings, 2)
    assert (report.rentals, report.payments) == (2 * 16044, 2 * 16049)
    orphans = query(settings.source_dsn, """
        select (select count(*) from payment p where not exists (select 1 from rental r where r.rental_id = p.rental_id)),
               (select count(*) from payment p where not exists (select 1 from customer c where c.customer_id = p.customer_id)),
               (select count(*) from rental r where not exists (select 1 from inventory i where i.inventory_id = r.inventory_id)),
               (select count(*) from rental r where not exists (select 1 from customer c where c.customer_id = r.customer_id))
    """)
    assert orphans == [(0, 0, 0, 0)]
    assert query(settings.source_dsn, "select count(*) from customer")[0][0] == 2 * 599
    again = example.scale(settings, 2)
    assert again.copies_added == 0 and again.rentals == 2 * 16044
    revenue = query(settings.source_dsn, "select sum(amount) from payment")[0][0]
    assert str(revenue) == "134833.02"  # 2 x 67416.51, to the cent
    example.simulate(settings, seed=1, transactions=10, rate=None)  # the application keeps working after it
