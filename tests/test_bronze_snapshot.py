"""The initial snapshot lands every source row once, and the stream continues it gap-free."""

from __future__ import annotations

import pytest

import psycopg
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


ANY_SCHEMA = """
create schema odd;
create type odd.mood as enum ('ok', 'meh');
create domain odd.year as integer check (value > 0);
create table odd."Odd Name" (
    region text, code integer, flag boolean, padded char(5), host inet, net cidr, amount numeric(8,2),
    ratio double precision, small real, yr odd.year, mood odd.mood, tags text[], flags boolean[], raw bytea,
    doc jsonb, at timestamptz, span interval, "Mixed Case" text, nm name,
    primary key (region, code));
insert into odd."Odd Name"
select 'r' || (g % 7), g, g % 2 = 0, 'ab', ('10.0.0.' || (g % 250))::inet, ('10.' || (g % 250) || '.0.0/16')::cidr,
       case when g % 13 = 0 then 'NaN'::numeric else g * 1.25 end,
       case when g % 11 = 0 then 'Infinity'::float8 else g / 3.0 end,
       g / 7.0, 2000 + g % 20, case when g % 2 = 0 then 'ok' else 'meh' end::odd.mood, array['a"b', 'c\\d'],
       array[true, null], decode(lpad(to_hex(g), 8, '0'), 'hex'), jsonb_build_object('g', g, 's', 'x y'),
       '2024-01-01 00:00+00'::timestamptz + g * interval '1 hour', g * interval '1 minute', E'tab\\there "q"',
       'n' || g
from generate_series(1, 1500) as g;
insert into odd."Odd Name" (region, code) values ('nulls', 0);
create table odd.keyless (a integer, b text);
insert into odd.keyless select g % 5, 'same' from generate_series(1, 400) as g;
create table odd.parted (id bigint primary key, v text) partition by range (id);
create table odd.parted_low partition of odd.parted for values from (0) to (500);
create table odd.parted_high partition of odd.parted for values from (500) to (maxvalue);
insert into odd.parted select g, repeat('x', g % 40) from generate_series(1, 1200) as g;
create table odd.empty (id integer primary key);
"""


def stream_forms(columns: list[tuple[str, str]], plugin: str) -> sql.Composable:
    """The stream's value forms of t's row as a jsonb, computed independently of the snapshot's
    value_forms.row_values (to_jsonb per column): what pgoutput and wal2json send for each type."""
    number_types = {"smallint", "integer", "bigint", "oid", "real", "double precision", "numeric"}

    def value(column: str, declared_type: str) -> sql.Composable:
        c = sql.Identifier(column)
        if plugin == "pgoutput":  # the type's output function (a cast to text can differ: 'true' for t)
            return sql.SQL("to_jsonb(case when {c} is null then null else format('%s', {c}) end)").format(c=c)
        if declared_type.split("(")[0] in number_types:  # NaN and infinities: null in wal2json
            return sql.SQL("case when {c}::text in ('NaN', 'Infinity', '-Infinity') then null "
                           "else to_jsonb({c}) end").format(c=c)
        if declared_type == "boolean":
            return sql.SQL("to_jsonb({})").format(c)
        if declared_type == "bytea":
            return sql.SQL("to_jsonb(encode({}, 'hex'))").format(c)
        return sql.SQL("to_jsonb({}::text)").format(c)

    calls = [sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(name), value(name, type_)) for name, type_ in columns[i:i + 50]))
        for i in range(0, len(columns), 50)]  # jsonb_build_object takes at most 100 arguments
    return sql.SQL(" || ").join(calls) if calls else sql.SQL("'{}'::jsonb")


def test_parallel_chunks_equal_one_connection_in_the_stream_forms(
        blank_settings: Settings, plugin: str | None, cluster, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Another schema (text and composite keys, a keyless table, a partitioned one, a name to
    quote, types whose text forms differ): bronze after a snapshot cut into one-block chunks
    read by two workers equals the snapshot of one worker reading each table in one chunk, row
    for row with the same ordinals, and every value is what the stream's forms give
    (stream_forms, computed in the source)."""
    import dataclasses
    from collections import Counter

    from medallion.source.catalog import read_tables
    from support import create_database, drop_database

    src = blank_settings.source_dsn or ""
    execute(src, ANY_SCHEMA)
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["odd.*"]\n')
    parallel = dataclasses.replace(blank_settings, plugin=plugin, config_path=config)
    pipeline.prepare_source(parallel)
    single_wh = create_database(cluster, f"{blank_settings.slot}_one")
    single = dataclasses.replace(parallel, warehouse_dsn=single_wh, slot=f"{blank_settings.slot}_one")
    try:
        pipeline.prepare_source(single)
        monkeypatch.setenv("MEDALLION_SNAPSHOT_CHUNK_BLOCKS", "1")
        monkeypatch.setenv("MEDALLION_SNAPSHOT_WORKERS", "2")
        pipeline.ingest(parallel)
        monkeypatch.setenv("MEDALLION_SNAPSHOT_CHUNK_BLOCKS", "100000")
        monkeypatch.setenv("MEDALLION_SNAPSHOT_WORKERS", "1")
        pipeline.ingest(single)

        wh = parallel.warehouse_dsn or ""
        chunks = dict(query(wh, "select bronze_table, count(*) from bronze.snapshot_chunk group by 1"))
        assert chunks[bronze_table("odd", "Odd Name")] > 10 and chunks[bronze_table("odd", "parted")] >= 2
        assert query(wh, "select distinct state from bronze.snapshot_chunk") == [("copied",)]
        # one snapshot, one known-from time, however many transactions its chunks took (silver's
        # sys_known_from: "as known at" a time between two chunks must not see half a snapshot)
        loaded = query(wh, sql.SQL(" union ".join(["select distinct load_ts from {}"] * 2)).format(
            sql.Identifier("bronze", bronze_table("odd", "Odd Name")), sql.Identifier("bronze", bronze_table("odd", "parted"))))
        assert len(loaded) == 1, loaded
        plugin_name = plugin or "pgoutput"
        with psycopg.connect(src) as conn:
            tables = {t.name: t for t in read_tables(conn) if t.schema == "odd" and not t.is_partition}
        assert set(tables) == {"Odd Name", "keyless", "parted", "empty"}
        for name, table in tables.items():
            bronze = sql.Identifier("bronze", bronze_table("odd", name))
            rows = sql.SQL("select ordinal, op, full_row::text, source_table from {} order by ordinal").format(bronze)
            got = query(wh, rows)
            assert got == query(single_wh, rows), name
            assert [r[0] for r in got] == list(range(1, len(got) + 1)), name  # unique, dense, from 1
            expected = query(src, sql.SQL("select ({})::text from {} as t").format(
                stream_forms([(c.name, c.type) for c in table.columns], plugin_name),
                sql.Identifier("odd", name)))
            assert Counter(r[2] for r in got) == Counter(r[0] for r in expected), name
        assert {r[0] for r in query(wh, sql.SQL("select distinct source_table from {}").format(
            sql.Identifier("bronze", bronze_table("odd", "parted"))))} == {"odd.parted_low", "odd.parted_high"}
    finally:
        drop_database(cluster, f"{blank_settings.slot}_one")
