"""The initial snapshot lands every source row once, and the stream continues it gap-free."""

from __future__ import annotations

import pytest

from psycopg import sql

from medallion import pipeline
from medallion.naming import bronze_table
from pagila_example.pagila import TABLES as PAGILA_TABLES
from medallion.settings import Settings
from support import execute, query

# every bronze test runs with both output plugins: pgoutput (the default) and wal2json
pytestmark = pytest.mark.parametrize("plugin", ["pgoutput", "wal2json"], indirect=True)

EXPECTED = {"rental": 16044, "payment": 16049, "customer": 599, "film": 1000, "inventory": 4581,
            "staff": 1500, "store": 500, "address": 603, "film_actor": 5462}


def bronze_live_rows(settings: Settings, table: str) -> int:
    """Rows a replay of bronze leaves: snapshot + inserts - deletes (no truncates here)."""
    statement = sql.SQL(
        "select count(*) filter (where op in ('R', 'I')) - count(*) filter (where op = 'D') from bronze.{}"
    ).format(sql.Identifier(bronze_table('public', table)))
    return query(settings.warehouse_dsn, statement)[0][0]


def test_snapshot_counts_equal_source_counts(settings: Settings) -> None:
    report = pipeline.ingest(settings)
    for table in PAGILA_TABLES:
        source = query(settings.source_dsn, sql.SQL("select count(*) from {}").format(sql.Identifier(table)))[0][0]
        assert bronze_live_rows(settings, table) == source, table
    for table, count in EXPECTED.items():
        assert bronze_live_rows(settings, table) == count, table
    assert report.snapshot_rows == sum(
        query(settings.source_dsn, sql.SQL("select count(*) from {}").format(sql.Identifier(t)))[0][0]
        for t in PAGILA_TABLES)


def test_snapshot_rows_match_stream_format(settings: Settings) -> None:
    """An R row and an I row of the same values have the same JSON shape (wal2json's forms)."""
    pipeline.ingest(settings)
    execute(settings.source_dsn,
            "insert into film (title, description, release_year, language_id, original_language_id, "
            "rental_duration, rental_rate, length, replacement_cost, rating, special_features, fulltext) "
            "select title || ' II', description, release_year, language_id, original_language_id, "
            "rental_duration, rental_rate, length, replacement_cost, rating, special_features, fulltext "
            "from film where film_id = 1")
    pipeline.ingest(settings)
    rows = query(settings.warehouse_dsn,
                 "select op, full_row - '{film_id,title,last_update,fulltext}'::text[] from bronze.br_film_cdc "
                 "where (op = 'R' and full_row->>'film_id' = '1') or op = 'I' order by op")
    assert [r[0] for r in rows] == ["I", "R"]
    assert rows[0][1] == rows[1][1]
    assert isinstance(rows[1][1]["release_year"], str)  # a domain over int: wal2json quotes it
    assert rows[1][1]["rental_rate"] == rows[0][1]["rental_rate"]


def test_changes_during_snapshot_are_neither_lost_nor_doubled(settings: Settings) -> None:
    """Changes committed after the snapshot arrive once as stream rows, after the R rows."""
    pipeline.ingest(settings)
    execute(settings.source_dsn, "update customer set email = 'after@example.com' where customer_id = 7")
    execute(settings.source_dsn, "delete from payment where payment_id = (select min(payment_id) from payment)")
    pipeline.ingest(settings)
    customer = query(settings.warehouse_dsn,
                     "select op, full_row->>'email' from bronze.br_customer_cdc "
                     "where full_row->>'customer_id' = '7' order by commit_lsn, ordinal")
    assert [op for op, _ in customer] == ["R", "U"]
    assert customer[-1][1] == "after@example.com"
    assert bronze_live_rows(settings, "payment") == 16048


def test_rerun_without_changes_adds_nothing(settings: Settings) -> None:
    pipeline.ingest(settings)
    before = query(settings.warehouse_dsn, "select count(*) from bronze.br_rental_cdc")[0][0]
    report = pipeline.ingest(settings)
    assert report.snapshot_rows == 0 and report.changes == 0
    assert query(settings.warehouse_dsn, "select count(*) from bronze.br_rental_cdc")[0][0] == before
