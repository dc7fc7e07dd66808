"""Silver built by dbt from bronze: true history, current state, incremental = full refresh.

Every test drives the real pipeline (source -> ingest -> dbt build) on its own databases.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from medallion import pipeline
from medallion.bronze import store
from medallion.errors import BuildFailed
from medallion.selection import resolve
from medallion.source.catalog import read_tables
from medallion.settings import Settings
from support import execute, query, schema_dump

# Incompressible text well over the 2 kB TOAST threshold: stored out of line, so an update that
# leaves it unchanged omits it from the change (bronze completes it from the old row).
LARGE_TEXT = "(select string_agg(md5(g::text || {seed}), '') from generate_series(1, 400) as g)"

# Tests that are about silver alone build only its models (gold's have their own tests).
SILVER = ("silver",)

# The source tables silver mirrors as current state, with the silver relation and its columns.
RECONCILED = {
    "customer": ("silver.dim_customer", "customer_id, store_id, first_name, last_name, email, address_id, "
                                        "activebool, create_date, last_update, active"),
    "film": ("silver.dim_film", "film_id, title, description, release_year, language_id, original_language_id, "
                                "rental_duration, rental_rate, length, replacement_cost, rating::text, last_update, "
                                "special_features, fulltext::text"),
    "rental": ("silver.fact_rental", "rental_id, rental_date, inventory_id, customer_id, return_date, staff_id, "
                                     "last_update"),
    "payment": ("silver.fact_payment", "payment_id, customer_id, staff_id, rental_id, amount, payment_date"),
}


def assert_silver_equals_source(settings: Settings) -> None:
    """Reconciliation across the two databases: the current state in silver is the source's."""
    for table, (relation, columns) in RECONCILED.items():
        statement = "select {} from {} order by 1"
        source = query(settings.source_dsn, statement.format(columns, table))
        silver = query(settings.warehouse_dsn, statement.format(columns, relation))
        assert silver == source, f"{relation} differs from source {table}"


def silver_dump(settings: Settings) -> dict[str, list[str]]:
    """Every silver relation (tables, partitions, views, bookkeeping) as ordered row texts."""
    return schema_dump(settings.warehouse_dsn, "silver")


def bronze_changes(settings: Settings, table: str, key: str, value: int) -> list[tuple]:
    """(op, commit_ts, full_row) of one key's bronze rows, in commit order."""
    statement = sql.SQL("select op, commit_ts, full_row from bronze.{} where full_row ->> {} = {} "
                        "order by commit_lsn, ordinal").format(
        sql.Identifier(f"br_{table}_cdc"), sql.Literal(key), sql.Literal(str(value)))
    return query(settings.warehouse_dsn, statement)


def returning(dsn: str, statement: str) -> int:
    """Run one statement in its own transaction and return the first column of its row."""
    return query(dsn, statement)[0][0]


def test_scripted_changes_become_exact_versions(settings: Settings) -> None:
    report = pipeline.run(settings)
    assert report.build.count("model") >= 10 and report.build.count("test") >= 20
    counts = query(settings.warehouse_dsn,
                   "select (select count(*) from silver.dim_customer), (select count(*) from silver.dim_film)")
    assert counts == [(599, 1000)]

    src = settings.source_dsn
    # each step commits on its own: every step is one source transaction
    customer = returning(src, "insert into customer (store_id, first_name, last_name, email, address_id) "
                              "values (1, 'Ada', 'Lovelace', 'ada0@example.com', 1) returning customer_id")
    for n in (1, 2, 3):
        execute(src, "update customer set email = %s where customer_id = %s", [f"ada{n}@example.com", customer])
    execute(src, "update film set rental_rate = 1.99 where film_id = 1")
    execute(src, "delete from customer where customer_id = %s", [customer])
    # a large (TOASTed) description, then a change of another column only
    large = LARGE_TEXT.format(seed="'toast'")
    execute(src, f"update film set description = {large} where film_id = 7")
    execute(src, "update film set rental_rate = 3.33 where film_id = 7")
    # two changes in one transaction: only the last is a version (no one saw the first)
    execute(src, "begin; update customer set email = 'first@example.com' where customer_id = 3; "
                 "update customer set email = 'second@example.com' where customer_id = 3; commit")
    pipeline.run(settings)

    wh = settings.warehouse_dsn
    changes = bronze_changes(settings, "customer", "customer_id", customer)
    assert [op for op, _, _ in changes] == ["I", "U", "U", "U", "D"]
    commit_times = [ts for _, ts, _ in changes]
    history = query(wh, "select email, sys_start, sys_end from silver.dim_customer_hist "
                        "where customer_id = %s order by sys_start", [customer])
    emails = [f"ada{n}@example.com" for n in range(4)]
    assert history == list(zip(emails, commit_times[:4], commit_times[1:]))

    # as of each step's commit time, and just before it
    as_of = "select email from silver.dim_customer_as_of(%s) where customer_id = %s"
    assert query(wh, as_of, [commit_times[0] - timedelta(microseconds=1), customer]) == []
    for email, ts in zip(emails, commit_times):
        assert query(wh, as_of, [ts, customer]) == [(email,)]
        assert query(wh, as_of, [ts + timedelta(microseconds=1), customer]) == [(email,)]
    assert query(wh, as_of, [commit_times[4], customer]) == []
    assert query(wh, "select count(*) from silver.dim_customer where customer_id = %s", [customer]) == [(0,)]

    film = bronze_changes(settings, "film", "film_id", 1)
    snapshot_ts, update_ts = film[0][1], film[1][1]
    assert query(wh, "select rental_rate::text, sys_start, nullif(sys_end, 'infinity') from silver.dim_film_hist "
                     "where film_id = 1 order by sys_start") == [("0.99", snapshot_ts, update_ts),
                                                                  ("1.99", update_ts, None)]

    original = bronze_changes(settings, "customer", "customer_id", 3)[0][2]["email"]
    collapsed = query(wh, "select email from silver.dim_customer_hist where customer_id = 3 order by sys_start")
    assert collapsed == [(original,), ("second@example.com",)]
    newest = query(wh, f"select length(description), description = {large}, rental_rate::text "
                       "from silver.dim_film_hist where film_id = 7 order by sys_start desc limit 1")
    assert newest == [(12800, True, "3.33")]

    assert query(wh, "select count(*) from silver.dim_customer") == [(599,)]
    assert_silver_equals_source(settings)


def test_incremental_builds_equal_a_full_refresh(settings: Settings) -> None:
    src = settings.source_dsn

    def ingest_and_build() -> None:
        pipeline.ingest(settings)
        pipeline.build(settings, select=SILVER)

    ingest_and_build()
    open_rental = returning(src, "select min(rental_id) from rental where return_date is null")
    bursts = [
        ["update rental set return_date = rental_date + interval '3 days' where rental_id = %d" % open_rental,
         "update customer set email = 'burst1@example.com' where customer_id = 10",
         "update film set description = %s where film_id = 20" % LARGE_TEXT.format(seed="'burst'"),
         "insert into rental (rental_date, inventory_id, customer_id, staff_id) "
         "values ('2026-11-20 10:00+00', 1, 10, 1)"],
        ["update film set rental_rate = 2.22 where film_id = 20",
         "delete from payment where payment_id = (select min(payment_id) from payment)",
         "update payment set amount = amount + 1 where payment_id = (select max(payment_id) from payment)",
         "begin; update store set address_id = 2 where store_id = 1; "
         "update store set address_id = 3 where store_id = 1; commit",
         "truncate payment_p2022_02",
         "insert into customer (store_id, first_name, last_name, email, address_id) "
         "values (1, 'Moved', 'Key', 'moved@example.com', 1)",
         "update customer set customer_id = 90001 where email = 'moved@example.com'"],
        ["update address set phone = '555' where address_id = 5",
         "create table payment_p2026_11 partition of payment "
         "for values from ('2026-11-01 00:00+00') to ('2026-12-01 00:00+00')",
         "insert into payment (customer_id, staff_id, rental_id, amount, payment_date) "
         "select 10, 1, max(rental_id), 9.99, '2026-11-21 12:00+00' from rental",
         "delete from customer where customer_id = 90001",
         "update staff set email = 'boss@example.com' where staff_id = 1"],
    ]
    for burst in bursts:
        for statement in burst:
            execute(src, statement)
        ingest_and_build()
    incremental = silver_dump(settings)
    assert "fact_payment_p2022_02" not in incremental and "fact_rental_p2026_11" in incremental
    pipeline.build(settings, full_refresh=True, select=SILVER)
    rebuilt = silver_dump(settings)
    assert rebuilt.keys() == incremental.keys()
    for name in rebuilt:
        assert rebuilt[name] == incremental[name], name
    assert_silver_equals_source(settings)

    newest = query(settings.warehouse_dsn, "select length(description), rental_rate::text from silver.dim_film_hist "
                                           "where film_id = 20 and sys_end = 'infinity'")
    assert newest == [(12800, "2.22")]
    # an update of the key ends the old key's history and starts the new key's
    assert query(settings.warehouse_dsn, "select count(*) from silver.dim_customer_hist "
                                         "where email = 'moved@example.com' and sys_end = 'infinity'") == [(0,)]

    # a failing dbt test stops the build with one line that names it (only the view and its
    # tests are built: the failure, not the build, is under test)
    execute(settings.warehouse_dsn, "update silver.dim_customer_hist set email = 'tampered' "
                                    "where customer_id = 1 and sys_end = 'infinity'")
    with pytest.raises(BuildFailed) as failure:
        pipeline.build(settings, select=("dim_customer",))
    message = str(failure.value)
    assert "\n" not in message
    assert "current_matches_bronze_replay_dim_customer" in message and failure.value.node in message


def test_edge_cases_of_commit_order(settings: Settings) -> None:
    """Hand-written bronze for what a live source rarely produces: two transactions with one
    commit time, a commit time earlier than the one before (the source's clock stepped back),
    and truncates sharing a transaction with inserts, split over two builds. In commit order a
    key's versions start strictly later than the one before; none is replaced."""
    wh = settings.warehouse_dsn
    t0, t1, t2, t3 = (f"2026-11-0{day} 12:00+00" for day in (1, 2, 3, 4))
    # what a snapshot records first: each captured table's bronze table and schema
    with psycopg.connect(settings.source_dsn) as src, psycopg.connect(wh) as conn:
        store.ensure_schema(conn)
        for captured in resolve(settings.config(), read_tables(src)).captured:
            store.create_bronze_table(conn, captured.bronze)
            store.record_table(conn, captured.bronze, captured.table, 0, t0)
    insert = ("insert into bronze.br_customer_cdc (commit_lsn, ordinal, lsn, op, full_row, source_table, commit_ts) "
              "values (%s, %s, %s, %s, %s, 'public.customer', %s)")

    def change(lsn: int, ordinal: int, op: str, row: dict | None, ts: str) -> None:
        execute(wh, insert, [lsn, ordinal, lsn, op, Jsonb(row) if row else None, ts])

    change(100, 1, "R", {"customer_id": 1, "email": "a"}, t0)
    change(100, 2, "R", {"customer_id": 2, "email": "a"}, t0)
    change(200, 1, "U", {"customer_id": 1, "email": "b"}, t1)
    pipeline.build(settings, select=SILVER)
    change(300, 1, "U", {"customer_id": 1, "email": "c"}, t1)  # same commit time as lsn 200
    change(400, 1, "I", {"customer_id": 3, "email": "x"}, t2)  # inserted, then truncated ...
    change(400, 2, "T", None, t2)                              # ... in the same transaction
    change(500, 1, "T", None, t3)                              # truncated, then inserted ...
    change(500, 2, "I", {"customer_id": 4, "email": "y"}, t3)  # ... in the same transaction
    change(600, 1, "U", {"customer_id": 4, "email": "z"}, t1)  # committed later, stamped earlier
    pipeline.build(settings, select=SILVER)

    history = query(wh, "select customer_id, email, sys_start::text, nullif(sys_end, 'infinity')::text "
                        "from silver.dim_customer_hist order by customer_id, sys_start")
    as_text = {t: query(wh, "select %s::timestamptz::text", [t])[0][0] for t in (t0, t1, t2, t3)}
    t0, t1, t2, t3 = (as_text[t] for t in (t0, t1, t2, t3))
    just_after = {t: query(wh, "select (%s::timestamptz + interval '1 microsecond')::text", [t])[0][0]
                  for t in (t1, t3)}
    assert history == [(1, "a", t0, t1), (1, "b", t1, just_after[t1]), (1, "c", just_after[t1], t2),
                       (2, "a", t0, t2), (4, "y", t3, just_after[t3]), (4, "z", just_after[t3], None)]
