"""Gold marts built by dbt from silver: reconciled with the source to the cent, incremental by
group (only touched months/days are rewritten, and the result equals a full rebuild), and
gold.<mart>_as_of(ts) time travel.

Every test drives the real pipeline (source -> ingest -> dbt build) on its own databases. dbt
builds cost seconds, so each test runs several checks on one pipeline.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg

from medallion import pipeline
from medallion.settings import Settings
from pagila_example import api as example
from support import execute, query, schema_dump

MARCH = date(2022, 3, 1)
MARTS = {  # mart -> (its key, its as-of function)
    "vw_monthly_revenue": ("store_id, month", "monthly_revenue_as_of"),
    "vw_top_titles": ("film_id, month", "top_titles_as_of"),
    "vw_store_scorecard": ("store_id, day", "store_scorecard_as_of"),
}

# The source's own answers, through rental -> inventory -> store as Pagila's sales_by_store.
SOURCE_STORE_MONTHS = """
    select i.store_id, date_trunc('month', p.payment_date at time zone 'UTC')::date as month,
           sum(p.amount), count(*)
    from payment as p
    join rental as r on r.rental_id = p.rental_id
    join inventory as i on i.inventory_id = r.inventory_id
    group by 1, 2 order by 1, 2"""
SOURCE_FILM_MONTHS = """
    select i.film_id, date_trunc('month', r.rental_date at time zone 'UTC')::date as month, count(*)
    from rental as r
    join inventory as i on i.inventory_id = r.inventory_id
    group by 1, 2 order by 1, 2"""


def mart_rows(settings: Settings, mart: str) -> list[tuple]:
    key, _ = MARTS[mart]
    return query(settings.warehouse_dsn, f"select * from gold.{mart} order by {key}")


def as_of_rows(settings: Settings, mart: str, ts: object, known: object = None) -> list[tuple]:
    """The mart as of ts (source time); with known, as the warehouse knew it then."""
    key, function = MARTS[mart]
    if known is not None:
        return query(settings.warehouse_dsn, f"select * from gold.{function}(%s, known => %s) order by {key}",
                     [ts, known])
    return query(settings.warehouse_dsn, f"select * from gold.{function}(%s) order by {key}", [ts])


def gold_dump(settings: Settings) -> dict[str, list[str]]:
    """Every gold relation (tables, partitions, views, bookkeeping) as ordered row texts."""
    return schema_dump(settings.warehouse_dsn, "gold")


def store_step(settings: Settings, mart: str, column: str) -> str:
    """A statement `run --follow` runs for the mart, as its last build stored it."""
    return query(settings.warehouse_dsn, f"select {column} from medallion.follow_step where model = %s",
                 [f"gold.{mart}"])[0][0]


def source_now(settings: Settings) -> object:
    """A time after every change committed so far (the source's clock: commit times are its)."""
    return query(settings.source_dsn, "select clock_timestamp()")[0][0]


def assert_gold_reconciles(settings: Settings) -> None:
    gold_store_months = query(settings.warehouse_dsn,
                              "select store_id, month, revenue, payments from gold.vw_monthly_revenue order by 1, 2")
    assert gold_store_months == query(settings.source_dsn, SOURCE_STORE_MONTHS)
    gold_film_months = query(settings.warehouse_dsn,
                             "select film_id, month, rentals from gold.vw_top_titles where rentals > 0 order by 1, 2")
    assert gold_film_months == query(settings.source_dsn, SOURCE_FILM_MONTHS)


def test_gold_reconciles_and_a_new_payment_changes_only_its_store_month(settings: Settings) -> None:
    pipeline.run(settings)
    wh, src = settings.warehouse_dsn, settings.source_dsn
    assert query(wh, "select count(*), sum(revenue), sum(payments) from gold.vw_monthly_revenue") == [
        (14, Decimal("67416.51"), 16049)]
    assert_gold_reconciles(settings)
    # the three marts agree with each other
    assert query(wh, "select sum(revenue), sum(rentals) from gold.vw_top_titles") == [(Decimal("67416.51"), 16044)]
    assert query(wh, "select sum(revenue), sum(rentals) from gold.vw_store_scorecard") == [
        (Decimal("67416.51"), 16044)]
    # the definitions on one store-day, recomputed here from the source
    store_day = query(src, """
        select round(100.0 * count(*) filter (where r.return_date > r.rental_date + f.rental_duration * interval '1 day')
                     / nullif(count(r.return_date), 0), 2),
               (select count(distinct customer_id) from (
                    select r2.customer_id from rental as r2 join inventory as i2 using (inventory_id)
                    where i2.store_id = 1 and (r2.rental_date at time zone 'UTC')::date = '2022-05-25'
                    union
                    select p.customer_id from payment as p join rental as r3 using (rental_id)
                    join inventory as i3 using (inventory_id)
                    where i3.store_id = 1 and (p.payment_date at time zone 'UTC')::date = '2022-05-25') as c)
        from rental as r join inventory as i using (inventory_id) join film as f using (film_id)
        where i.store_id = 1 and (r.rental_date at time zone 'UTC')::date = '2022-05-25'""")
    assert query(wh, "select late_return_pct, active_customers from gold.vw_store_scorecard "
                     "where store_id = 1 and day = '2022-05-25'") == store_day

    before = {mart: mart_rows(settings, mart) for mart in MARTS}
    written = query(wh, "select store_id, month, xmin::text from gold.vw_monthly_revenue order by 1, 2")
    before_ts = source_now(settings)

    # one new payment, for a rental of store 2, in March 2022 (an existing store-month)
    rental_id, store_id = query(src, "select r.rental_id, i.store_id from rental as r join inventory as i "
                                     "using (inventory_id) where i.store_id = 2 order by r.rental_id limit 1")[0]
    execute(src, "insert into payment (customer_id, staff_id, rental_id, amount, payment_date) "
                 "select customer_id, staff_id, rental_id, 7.77, '2022-03-15 12:00+00' from rental "
                 "where rental_id = %s", [rental_id])
    pipeline.run(settings)

    after = mart_rows(settings, "vw_monthly_revenue")
    changed = sorted(set(after) ^ set(before["vw_monthly_revenue"]))
    old = [r for r in before["vw_monthly_revenue"] if r[:2] == (store_id, MARCH)]
    assert len(old) == 1
    assert changed == sorted(old + [(store_id, MARCH, old[0][2] + Decimal("7.77"), old[0][3] + 1)])
    # only that group was rewritten: every other row is the very tuple of the previous build
    rewritten = set(query(wh, "select store_id, month, xmin::text from gold.vw_monthly_revenue order by 1, 2")) \
        ^ set(written)
    assert {row[:2] for row in rewritten} == {(store_id, MARCH)}
    assert_gold_reconciles(settings)

    # time travel: as of before the payment, each mart is what it was; as of now, what it is
    for mart in MARTS:
        assert as_of_rows(settings, mart, before_ts) == before[mart], mart
        assert as_of_rows(settings, mart, source_now(settings)) == mart_rows(settings, mart), mart




def rebuild_gold(settings: Settings) -> None:
    """dbt build --full-refresh of gold alone: every mart recomputed from scratch over the same silver."""
    report = pipeline.build(settings, full_refresh=True, select=("gold",))
    assert report.count("model") == 3, [n.unique_id for n in report.nodes]


def test_incremental_gold_equals_a_full_rebuild_and_travels_back(settings: Settings) -> None:
    src = settings.source_dsn
    pipeline.run(settings)
    # a rented item of store 1, its film, one of its rentals that has payments, and an open rental
    inventory_id, film_id = query(src, "select inventory_id, film_id from inventory where store_id = 1 "
                                       "and inventory_id in (select inventory_id from rental) order by 1 limit 1")[0]
    paid_rental = query(src, "select min(rental_id) from payment where rental_id in "
                             "(select rental_id from rental where inventory_id <> %s)", [inventory_id])[0][0]
    open_rental = query(src, "select min(rental_id) from rental where return_date is null")[0][0]
    bursts = [
        [  # moves: an item to the other store, a payment to another month, a title, a return
            ("update inventory set store_id = 2 where inventory_id = %s", [inventory_id]),
            ("update payment set payment_date = payment_date + interval '2 months' "
             "where payment_id = (select min(payment_id) from payment where payment_date < '2022-05-01')", None),
            ("update film set title = 'RENAMED TITLE' where film_id = %s", [film_id]),
            ("update rental set return_date = rental_date + interval '30 days' where rental_id = %s", [open_rental]),
            ("delete from payment where payment_id = (select max(payment_id) from payment "
             "where payment_date < '2022-08-01')", None),
        ],
        [  # a rental changes item (its payments follow), rental durations change lateness, a price
            ("update rental set inventory_id = %s where rental_id = %s", [inventory_id, paid_rental]),
            ("update film set rental_duration = 1 where film_id in (1, 2, 3, %s)", [film_id]),
            ("update payment set amount = amount + 0.01 where payment_id = (select min(payment_id) from payment "
             "where payment_date >= '2022-06-01')", None),
        ],
    ]
    snapshots = []
    built = []  # (warehouse time after a build, the marts it left)
    for seed, burst in enumerate(bursts):
        snapshots.append((source_now(settings), {mart: mart_rows(settings, mart) for mart in MARTS}))
        example.simulate(settings, seed=seed, transactions=40, rate=None)
        for statement, params in burst:
            execute(src, statement, params)
        pipeline.run(settings)
        assert_gold_reconciles(settings)
        built.append((query(settings.warehouse_dsn, "select clock_timestamp()")[0][0],
                      {mart: mart_rows(settings, mart) for mart in MARTS}))

    # each mart compared only the lines whose silver rows changed: it saw every model it reads,
    # and the stretch since holds nothing that needs every line compared
    for mart in MARTS:
        with psycopg.connect(settings.warehouse_dsn) as conn:
            conn.execute(store_step(settings, mart, "lock_sql"))  # the lock, and silver's positions read once
            assert conn.execute(store_step(settings, mart, "needs_build_sql")).fetchone() == (False,), mart
    assert query(settings.warehouse_dsn, "select model from medallion.gold__vw_top_titles__seen order by 1") == [
        ("silver.dim_film_hist",), ("silver.dim_inventory_hist",), ("silver.fact_payment",), ("silver.fact_rental",)]
    incremental = gold_dump(settings)
    assert query(settings.warehouse_dsn, "select distinct title from gold.vw_top_titles where film_id = %s",
                 [film_id]) == [("RENAMED TITLE",)]
    rebuild_gold(settings)
    rebuilt = gold_dump(settings)
    assert rebuilt.keys() == incremental.keys()
    for name in rebuilt:
        assert rebuilt[name] == incremental[name], name

    # time travel: the marts as each burst found them, and as they are now
    for ts, marts in snapshots:
        for mart, rows in marts.items():
            assert as_of_rows(settings, mart, ts) == rows, (mart, ts)
    now = source_now(settings)
    for mart in MARTS:
        assert as_of_rows(settings, mart, now) == mart_rows(settings, mart), mart
    # as known at the time of each build: the mart as that build left it
    for known, marts in built:
        for mart, rows in marts.items():
            assert as_of_rows(settings, mart, now, known) == rows, (mart, known)
