"""Any PostgreSQL database, not just Pagila: capture what the selection names and version every table.

Two schemas made here, unlike Pagila: an order-processing one in its own schema (text, uuid and
composite keys, bytea pictures over the TOAST threshold, numeric with scale, arrays, timestamp
without time zone, an enum, a partitioned table, a table whose name needs quoting, a table
without a key) and a music store in public (non-ASCII and mixed-case names, intervals, json).
Each is driven through the `medallion` command with no configuration but the include list,
through a workload of inserts, updates (keys changed, TOASTed values left alone) and deletes.
At quiet checkpoints the source's content is recorded; at the end silver's <t>_as_of(checkpoint)
must equal it, row for row and value for value, for every table with a key.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from medallion.settings import Settings
from bench.shop import SHOP_SCHEMA, SHOP_STEPS
from support import environment, execute, medallion, one_error_line, query

MUSIC_SCHEMA = """
create table artist (artist_id integer primary key, name text not null);
create table "Album" ("AlbumId" integer primary key, title text, artist_id integer, released date);
create table track (
    track_id integer primary key,
    album_id integer,
    name text,
    length interval,
    unit_price numeric(6,2),
    explicit boolean,
    extra json
);
create table "Künstler_Tag" (artist_id integer, tag varchar(20), primary key (artist_id, tag));
"""

MUSIC_STEPS = [
    ["insert into artist values (1, 'AC/DC'), (2, 'Accept')",
     "insert into \"Album\" values (1, 'For Those About To Rock', 1, '1981-11-23'), (2, 'Balls to the Wall', 2, null)",
     "insert into track values (1, 1, 'For Those About To Rock', '00:05:43', 0.99, false, '{\"bpm\": 134}'), "
     "(2, 2, 'Balls to the Wall', '00:05:42', 0.99, null, null)",
     "insert into \"Künstler_Tag\" values (1, 'rock'), (1, 'hard rock'), (2, 'metal')"],
    ["update track set unit_price = 1.29, explicit = true where track_id = 1",
     "update \"Album\" set \"AlbumId\" = 20 where \"AlbumId\" = 2",
     "update \"Künstler_Tag\" set tag = 'heavy metal' where artist_id = 2"],
    ["delete from artist where artist_id = 2",
     "insert into artist values (3, 'Aerosmith')",
     "update track set length = length + interval '1 second', extra = '{\"bpm\": 135}' where track_id = 1"],
]


def checkpoint(dsn: str, tables: list[str]) -> tuple[object, dict[str, list[tuple]]]:
    """The source's time and content now (the source is quiet: no transaction in flight)."""
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        at = conn.execute("select clock_timestamp()").fetchone()[0]
        content = {}
        for table in tables:
            schema, name = table.split(".", 1)
            rows = conn.execute(sql.SQL("select * from {}").format(sql.Identifier(schema, name))).fetchall()
            content[table] = sorted(rows, key=repr)
    return at, content


def silver_as_of(dsn: str, function: str, at: object) -> list[tuple]:
    """The rows of silver.<function>(at), without the system columns."""
    relation = sql.Identifier("silver", function)
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        names = [c.name for c in conn.execute(sql.SQL("select * from {}(%s) limit 0").format(relation), [at]).description]
        columns = sql.SQL(", ").join(sql.Identifier(n) for n in names if not n.startswith("sys_"))
        rows = conn.execute(sql.SQL("select {} from {}(%s)").format(columns, relation), [at]).fetchall()
    return sorted(rows, key=repr)


def source_columns(dsn: str, schema: str, table: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in query(dsn, "select attname, format_type(atttypid, atttypmod) from pg_attribute "
                                         "where attrelid = format('%%I.%%I', %s::text, %s::text)::regclass "
                                         "and attnum > 0 and not attisdropped order by attnum", [schema, table])]


def drive(settings: Settings, schema_sql: str, steps: list[list[str]], histories: dict[str, str],
          run_after: set[int]) -> tuple[list[tuple[object, dict]], dict[str, str]]:
    """Create the schema, run the workload with `medallion run` after some steps, checkpoint after each."""
    env = environment(settings)
    src = settings.source_dsn or ""
    execute(src, schema_sql)
    for statement in steps[0]:
        execute(src, statement)
    prepared = medallion("prepare-source", env=env)
    assert prepared.returncode == 0, prepared.stderr
    first = medallion("run", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    checkpoints = [checkpoint(src, list(histories))]
    for number, step in enumerate(steps[1:], start=1):
        for statement in step:
            execute(src, statement)
        checkpoints.append(checkpoint(src, list(histories)))
        if number in run_after:
            ran = medallion("run", env=env)
            assert ran.returncode == 0, ran.stdout + ran.stderr
    last = medallion("run", env=env)
    assert last.returncode == 0, last.stdout + last.stderr
    return checkpoints, env


def assert_history_is_the_source(settings: Settings, checkpoints: list[tuple[object, dict]],
                                 histories: dict[str, str]) -> None:
    wh = settings.warehouse_dsn or ""
    for number, (at, content) in enumerate(checkpoints):
        for table, base in histories.items():
            assert silver_as_of(wh, f"{base}_as_of", at) == content[table], f"{table} as of checkpoint {number}"


def assert_same_columns(settings: Settings, histories: dict[str, str], as_text: set[str] = frozenset()) -> None:
    """A history table has the source's columns and types (enums as text), then the period columns."""
    for table, base in histories.items():
        schema, name = table.split(".", 1)
        expected = [(column, "text" if type_ in as_text else type_)
                    for column, type_ in source_columns(settings.source_dsn or "", schema, name)]
        actual = source_columns(settings.warehouse_dsn or "", "silver", f"{base}_hist")
        assert actual == expected + [(period, "timestamp with time zone") for period in
                                     ("sys_start", "sys_end", "sys_known_from", "sys_known_to")], table


SHOP_HISTORIES = {
    "shop.customers": "shop__customers", "shop.products": "shop__products", "shop.orders": "shop__orders",
    "shop.order_lines": "shop__order_lines", "shop.events": "shop__events", "shop.Order Notes": "shop__Order Notes",
}


def test_an_order_processing_schema_with_only_an_include_list(blank_settings: Settings, tmp_path: Path) -> None:
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["shop.*"]\n')
    settings = replace(blank_settings, config_path=config)
    checkpoints, env = drive(settings, SHOP_SCHEMA, SHOP_STEPS, SHOP_HISTORIES, run_after={1})

    assert_history_is_the_source(settings, checkpoints, SHOP_HISTORIES)
    assert_same_columns(settings, SHOP_HISTORIES, as_text={"shop.order_status"})
    wh = settings.warehouse_dsn or ""
    # the unchanged TOASTed picture is whole in the version that changed only the price
    pictures = query(wh, "select price, length(picture) from silver.shop__products_hist "
                         "where sku = '7d3a2f3e-1b2c-4d5e-8f90-0123456789ab' order by sys_start")
    assert [p for _, p in pictures] == [4800, 4800, 4800] and [str(p) for p, _ in pictures] == \
        ["19.99", "17.50", "17.50"]
    # every table is in bronze, the keyless one too, with its changes; partitions land in the root
    assert query(wh, "select op, count(*) from bronze.br_shop__audit_log_cdc group by op order by op") == \
        [("D", 2), ("R", 2), ("U", 2)]
    assert {r[0] for r in query(wh, "select distinct source_table from bronze.br_shop__events_cdc")} == \
        {"shop.events_2026_01", "shop.events_2026_02", "shop.events_2026_03"}
    assert query(wh, "select count(*) from bronze.table_schema where schema_name <> 'shop'") == [(0,)]

    tables = medallion("tables", "--format", "json", env=env)
    assert tables.returncode == 0, tables.stderr
    listing = json.loads(tables.stdout)
    captured = {t["table"]: t for t in listing["captured"]}
    assert set(captured) == {"shop.customers", "shop.products", "shop.orders", "shop.order_lines", "shop.events",
                             "shop.Order Notes", "shop.audit_log"}
    assert captured["shop.orders"]["key"] == ["region", "order_id"]
    assert captured["shop.audit_log"]["key"] is None and captured["shop.audit_log"]["silver"] == []
    assert captured["shop.Order Notes"]["bronze"] == "bronze.br_shop__Order Notes_cdc"
    assert captured["shop.events"]["partitions"] == ["shop.events_2026_01", "shop.events_2026_02",
                                                     "shop.events_2026_03"]
    left_out = {t["table"]: t["reason"] for t in listing["left_out"]}
    assert left_out["public.not_selected"] == "not matched by [capture] include"
    assert left_out["shop.events_2026_01"] == "partition of shop.events: captured through its root"
    assert any('key = ["..."] under [tables."shop.audit_log"]' in n for n in listing["notes"])


MUSIC_HISTORIES = {"public.artist": "artist", "public.Album": "Album", "public.track": "track",
                   "public.Künstler_Tag": "Künstler_Tag"}


def test_a_music_store_in_public_with_no_config_at_all(blank_settings: Settings) -> None:
    checkpoints, env = drive(blank_settings, MUSIC_SCHEMA, MUSIC_STEPS, MUSIC_HISTORIES, run_after=set())
    assert_history_is_the_source(blank_settings, checkpoints, MUSIC_HISTORIES)
    assert_same_columns(blank_settings, MUSIC_HISTORIES)
    wh = blank_settings.warehouse_dsn or ""
    # the current rows and the key change of a mixed-case key
    assert query(wh, 'select "AlbumId" from silver."Album" order by 1') == [(1,), (20,)]
    assert query(wh, 'select count(*) from silver."Album_hist"') == [(3,)]
    # FOR SYSTEM_TIME works on every generated history
    at = checkpoints[0][0].isoformat()
    asked = medallion("query", "--format", "json",
                      f"select name from silver.artist_hist for system_time as of '{at}' order by 1", env=env)
    assert asked.returncode == 0, asked.stderr
    assert [r["name"] for r in json.loads(asked.stdout)] == ["AC/DC", "Accept"]


def test_selection_errors_are_one_line_each(blank_settings: Settings, tmp_path: Path) -> None:
    execute(blank_settings.source_dsn or "", "create table public.t (a int primary key)")
    env = environment(blank_settings)
    config = tmp_path / "medallion.toml"
    env["MEDALLION_CONFIG"] = str(config)

    config.write_text("[capture\ninclude = 1\n")
    assert "is not valid TOML" in one_error_line(medallion("tables", env=env))
    config.write_text('[capture]\ninclude = ["customer"]\n')
    line = one_error_line(medallion("tables", env=env))
    assert "'customer' names no schema: write schema.table, e.g. public.customer" in line
    config.write_text('[capture]\ninclude = ["public.[ab"]\n')
    assert "unclosed '['" in one_error_line(medallion("tables", env=env))
    config.write_text('[capture]\ninclude = ["sales.*"]\n')
    line = one_error_line(medallion("prepare-source", env=env))
    assert "no source table matches the selection ('sales.*'" in line
    config.write_text('[capture]\nincludes = ["public.*"]\n')
    assert "unknown key 'includes' in [capture] (did you mean 'include'?)" in one_error_line(
        medallion("tables", env=env))
    config.write_text('[tables."public.t"]\nkey = ["nope"]\n')
    assert "key column 'nope' is not a column of public.t" in one_error_line(medallion("tables", env=env))
    # an include that matches nothing beside one that does: said, not fatal
    config.write_text('[capture]\ninclude = ["public.*", "sales.*"]\n[tables."public.gone"]\nsilver = "x"\n')
    listed = medallion("tables", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "[capture] include 'sales.*' matches no table in the source" in listed.stderr
    assert '[tables."public.gone"] is ignored' in listed.stderr
    # a keyless table: captured, but the build says in one line what its history needs
    execute(blank_settings.source_dsn or "", "create table public.k (a int)")
    config.write_text('[capture]\ninclude = ["public.*"]\n')
    assert medallion("prepare-source", env=env).returncode == 0
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    assert 'public.k has no primary key: bronze captures it (REPLICA IDENTITY FULL) but silver builds no history ' \
           'until you set key = ["..."] under [tables."public.k"] in medallion.toml' in ran.stderr
    config.write_text('[tables."public.k"]\nkey = ["a"]\n')
    execute(blank_settings.source_dsn or "", "insert into public.k values (1), (2)")
    assert medallion("run", env=env).returncode == 0
    assert query(blank_settings.warehouse_dsn or "", "select a from silver.k order by 1") == [(1,), (2,)]


def test_a_table_created_after_capture_started_is_captured_from_its_first_row(blank_settings: Settings) -> None:
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    env = environment(blank_settings)
    execute(src, "create table public.first (id int primary key, v text)")
    execute(src, "insert into public.first values (1, 'a')")
    assert medallion("prepare-source", env=env).returncode == 0
    assert medallion("run", env=env).returncode == 0
    execute(src, "create table public.later (id int primary key, v numeric(5,1))")
    execute(src, "alter table public.later replica identity full")
    execute(src, "insert into public.later values (1, 1.5), (2, 2.5)")
    execute(src, "update public.later set v = 3.5 where id = 2")
    at = query(src, "select clock_timestamp()")[0][0]
    execute(src, "delete from public.later where id = 1")
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    assert "capturing public.later, new in the source, into bronze.br_later_cdc" in ran.stderr
    assert query(wh, "select op from bronze.br_later_cdc order by commit_lsn, ordinal") == \
        [("I",), ("I",), ("U",), ("D",)]
    as_of = query(wh, "select id, v::text from silver.later_as_of(%s) order by id", [at])
    assert as_of == [(1, "1.5"), (2, "3.5")]
    assert query(wh, "select id from silver.later") == [(2,)]
