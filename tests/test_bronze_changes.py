"""What bronze keeps of particular changes: new partitions, TOASTed values, transactions."""

from __future__ import annotations

import pytest

from medallion import pipeline
from medallion.settings import Settings
from support import execute, query

# every bronze test runs with both output plugins: pgoutput (the default) and wal2json
pytestmark = pytest.mark.parametrize("plugin", ["pgoutput", "wal2json"], indirect=True)

BIG_DESCRIPTION = "(select string_agg(md5(g::text || 'salt'), '') from generate_series(1, 400) g)"


def test_rows_of_a_partition_created_after_capture_started_reach_br_payment_cdc(settings: Settings) -> None:
    pipeline.ingest(settings)
    execute(settings.source_dsn, "create table payment_p2022_08 partition of payment "
                                 "for values from ('2022-08-01 00:00:00+00') to ('2022-09-01 00:00:00+00')")
    execute(settings.source_dsn,
            "insert into payment (customer_id, staff_id, rental_id, amount, payment_date) "
            "select customer_id, staff_id, rental_id, 1.25, '2022-08-02 10:00:00+00' "
            "from payment order by payment_id limit 3")
    execute(settings.source_dsn, "update payment set amount = 2.50 where payment_date >= '2022-08-01'")
    pipeline.ingest(settings)
    rows = query(settings.warehouse_dsn,
                 "select op, source_table, full_row->>'amount' from bronze.br_payment_cdc "
                 "where op <> 'R' order by commit_lsn, ordinal")
    assert [r[0] for r in rows] == ["I", "I", "I", "U", "U", "U"]
    assert {r[1] for r in rows} == {"public.payment_p2022_08"}
    assert [r[2] for r in rows[-3:]] == ["2.50"] * 3


def test_update_that_leaves_a_toasted_column_unchanged_keeps_its_value(settings: Settings) -> None:
    pipeline.ingest(settings)
    execute(settings.source_dsn, f"update film set description = {BIG_DESCRIPTION} where film_id = 5")
    execute(settings.source_dsn, "update film set rental_rate = 0.49 where film_id = 5")
    pipeline.ingest(settings)
    description = query(settings.source_dsn, "select description from film where film_id = 5")[0][0]
    toast = query(settings.source_dsn, "select reltoastrelid::regclass::text from pg_class where relname = 'film'")[0][0]
    assert query(settings.source_dsn, f"select count(*) > 0 from {toast}")[0][0], "the value must be stored out of line"
    rows = query(settings.warehouse_dsn,
                 "select full_row->>'description', full_row->>'rental_rate' from bronze.br_film_cdc "
                 "where op = 'U' order by commit_lsn, ordinal")
    assert len(rows) == 2
    assert rows[-1] == (description, "0.49")


def test_each_change_keeps_its_transaction_commit_time_and_order(settings: Settings) -> None:
    pipeline.ingest(settings)
    with_tx = ["update customer set email = 'one@example.com' where customer_id = 3",
               "update customer set email = 'two@example.com' where customer_id = 3"]
    execute(settings.source_dsn, "; ".join(with_tx))  # one transaction, two changes
    execute(settings.source_dsn, "update customer set email = 'three@example.com' where customer_id = 3")
    pipeline.ingest(settings)
    rows = query(settings.warehouse_dsn,
                 "select commit_lsn, ordinal, commit_ts, xid, full_row->>'email', old_row->>'email' "
                 "from bronze.br_customer_cdc where op = 'U' order by commit_lsn, ordinal")
    assert [r[4] for r in rows] == ["one@example.com", "two@example.com", "three@example.com"]
    assert rows[0][0] == rows[1][0] and rows[0][1] < rows[1][1]  # same commit, ordered within it
    assert rows[0][2] == rows[1][2] < rows[2][2]  # commit time of its transaction
    assert rows[0][3] == rows[1][3] != rows[2][3]
    assert rows[1][5] == "one@example.com"  # old_row is the row before the update


def test_delete_and_truncate_are_recorded(settings: Settings) -> None:
    pipeline.ingest(settings)
    execute(settings.source_dsn, "delete from film_actor where actor_id = 1 and film_id = 1")
    execute(settings.source_dsn, "truncate film_category")
    pipeline.ingest(settings)
    deleted = query(settings.warehouse_dsn, "select full_row from bronze.br_film_actor_cdc where op = 'D'")
    one = "1" if settings.plugin == "pgoutput" else 1  # pgoutput: every value is the type's text
    assert deleted == [({"actor_id": one, "film_id": one, "last_update": deleted[0][0]["last_update"]},)]
    truncated = query(settings.warehouse_dsn, "select full_row from bronze.br_film_category_cdc where op = 'T'")
    assert truncated == [(None,)]


def test_bronze_is_append_only(settings: Settings) -> None:
    import psycopg
    import pytest

    pipeline.ingest(settings)
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        execute(settings.warehouse_dsn, "delete from bronze.br_store_cdc")
