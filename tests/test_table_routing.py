"""Tables that change identity under capture: renamed, created later with PostgreSQL's defaults.

A renamed table continues its history under its new name (bronze knows it by its relid); a table
created after capture started keeps its unchanged large values whatever its replica identity;
and the publication never makes an UPDATE on the source fail. Non-Pagila schemas with quoted
names, on an empty source database.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from medallion import pipeline
from medallion.bronze.ingest import Ingester
from medallion.db import endpoints
from medallion.settings import Settings
from tests.support import environment, execute, medallion, query

SCHEMA = '"Odd Schema"'
OLD = '"My Lang"'
NEW = '"Lang Zwei"'


def _drop_ddl_trigger(src: str) -> None:
    execute(src, "drop event trigger medallion_ddl_end")
    execute(src, "drop event trigger medallion_ddl_drop")


@pytest.mark.parametrize(("plugin_name", "trigger"), [("pgoutput", True), ("pgoutput", False), ("wal2json", False)],
                         ids=["ddl-trigger", "no-trigger", "wal2json-no-trigger"])
def test_a_renamed_table_continues_its_history_under_its_new_name(blank_settings: Settings, plugin_name: str,
                                                                 trigger: bool, tmp_path: Path) -> None:
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    env = environment(replace(blank_settings, plugin=plugin_name))
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["Odd Schema.*"]\n')
    env["MEDALLION_CONFIG"] = str(config)
    execute(src, f"create schema {SCHEMA}")
    execute(src, f"create table {SCHEMA}.{OLD} (id int primary key, name text not null)")
    execute(src, f"insert into {SCHEMA}.{OLD} select g, 'lang ' || g from generate_series(1, 6) as g")
    assert medallion("prepare-source", env=env).returncode == 0
    if not trigger:
        _drop_ddl_trigger(src)
    first = medallion("run", env=env)
    assert first.returncode == 0, first.stderr
    assert query(wh, 'select count(*) from silver."Odd Schema__My Lang" ') == [(6,)]

    execute(src, f"alter table {SCHEMA}.{OLD} rename to {NEW}")
    execute(src, f"update {SCHEMA}.{NEW} set name = 'renamed' where id = 2")
    execute(src, f"insert into {SCHEMA}.{NEW} values (7, 'lang 7')")
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    said = [line for line in ran.stderr.splitlines() if "was renamed to" in line]
    assert len(said) == 1, ran.stderr
    assert '"Odd Schema"."My Lang" was renamed to "Odd Schema"."Lang Zwei"' in said[0]
    assert "new in the source" not in ran.stderr

    source_rows = query(src, f"select id, name from {SCHEMA}.{NEW} order by id")
    assert query(wh, 'select id, name from silver."Odd Schema__Lang Zwei" order by id') == source_rows
    # all history kept under the new name: the six snapshot versions and the two changes
    assert query(wh, 'select count(*) from silver."Odd Schema__Lang Zwei_hist"') == [(8,)]
    # nothing is current under the old name any more
    assert query(wh, "select count(*) from pg_class join pg_namespace n on n.oid = relnamespace "
                     "where nspname = 'silver' and relname like 'Odd Schema__My Lang%'") == [(0,)]
    # one bronze table for the table, whatever its name
    assert query(wh, "select count(*) from bronze.table_schema where table_name = 'Lang Zwei'") == [(1,)]
    assert query(wh, "select count(distinct bronze_table) from bronze.table_schema") == [(1,)]


def test_a_table_renamed_out_of_the_selection_ends_its_history_and_says_so(blank_settings: Settings,
                                                                            tmp_path: Path) -> None:
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    env = environment(blank_settings)
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["public.*"]\nexclude = ["public.archived_*"]\n')
    env["MEDALLION_CONFIG"] = str(config)
    execute(src, "create table public.keep (id int primary key)")
    execute(src, "create table public.orders (id int primary key, v text)")
    execute(src, "insert into public.orders values (1, 'a'), (2, 'b')")
    assert medallion("prepare-source", env=env).returncode == 0
    assert medallion("run", env=env).returncode == 0
    execute(src, "alter table public.orders rename to archived_orders")
    execute(src, "update public.archived_orders set v = 'c' where id = 1")
    execute(src, "insert into public.keep values (1)")
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    said = [line for line in ran.stderr.splitlines() if "was renamed to" in line]
    assert len(said) == 1 and "public.orders was renamed to public.archived_orders, which" in said[0] \
        and "does not select" in said[0], ran.stderr
    assert query(wh, "select count(*) from silver.orders") == [(0,)]  # its rows closed at the rename
    assert query(wh, "select count(*) from silver.orders_hist") == [(2,)]


def test_a_keyless_table_created_later_never_breaks_the_source(blank_settings: Settings) -> None:
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    env = environment(blank_settings)
    execute(src, "create table public.first (id int primary key, v text)")
    execute(src, "insert into public.first values (1, 'a')")
    assert medallion("prepare-source", env=env).returncode == 0
    assert medallion("run", env=env).returncode == 0

    # the application creates and uses a table without a key: its UPDATE and DELETE succeed
    execute(src, "create table public.no_key (a int, b text)")
    execute(src, "insert into public.no_key values (1, 'x'), (2, 'y')")
    execute(src, "update public.no_key set b = 'z' where a = 1")
    execute(src, "delete from public.no_key where a = 2")
    # a table created with a key in the same schema is still captured from its first row
    execute(src, "begin; create table public.later (id int primary key, v text); "
                 "insert into public.later values (1, 'a'); commit")
    execute(src, "update public.later set v = 'b' where id = 1")
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    said = [line for line in ran.stderr.splitlines() if "public.no_key" in line]
    assert len(said) == 1, ran.stderr
    assert "is not published" in said[0] and "medallion prepare-source" in said[0]
    assert query(wh, "select id, v from silver.later") == [(1, "b")]
    assert not query(wh, "select from bronze.table_schema where table_name = 'no_key'")


@pytest.mark.parametrize("plugin_name", ["pgoutput", "wal2json"])
def test_an_unchanged_large_value_survives_updates_under_the_default_identity(blank_settings: Settings,
                                                                              plugin_name: str) -> None:
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    env = environment(replace(blank_settings, plugin=plugin_name))
    execute(src, "create table public.first (id int primary key)")
    assert medallion("prepare-source", env=env).returncode == 0
    assert medallion("run", env=env).returncode == 0
    # created after capture started: PostgreSQL's default identity (the primary key), not FULL
    big = "(select string_agg(md5(random()::text), '') from generate_series(1, 400))"  # 12,800 characters
    execute(src, 'create table public."Doc" (id int primary key, body text, note text)')
    execute(src, f'insert into public."Doc" select g, {big}, \'new\' from generate_series(1, 3) as g')
    assert query(src, "select relreplident from pg_class where relname = 'Doc'") == [("d",)]
    assert medallion("run", env=env).returncode == 0  # the previous version is in bronze
    execute(src, 'update public."Doc" set note = \'one\' where id = 1')
    # several updates of one row in one transaction, and a row inserted and updated in it
    execute(src, f"""begin;
        update public."Doc" set note = 'two' where id = 2;
        update public."Doc" set note = 'three' where id = 2;
        insert into public."Doc" select 4, {big}, 'new';
        update public."Doc" set note = 'four' where id = 4;
        update public."Doc" set note = 'again' where id = 1;
        commit""")
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    source_rows = query(src, 'select id, md5(body), length(body), note from public."Doc" order by id')
    assert all(length == 12_800 for _, _, length, _ in source_rows)
    assert query(wh, 'select id, md5(body), length(body), note from silver."Doc" order by id') == source_rows
    # no version of any row lost its value
    assert query(wh, 'select count(*) from silver."Doc_hist" where body is null') == [(0,)]

    # after a lost slot and a re-sync, the row's previous version is the epoch's
    execute(src, "select pg_drop_replication_slot(%s)", [blank_settings.slot])
    execute(src, f'update public."Doc" set body = {big} where id = 3')  # in the gap
    resynced = medallion("resync", env=env)
    assert resynced.returncode == 0, resynced.stderr
    execute(src, 'update public."Doc" set note = \'after\' where id = 3')
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    source_rows = query(src, 'select id, md5(body), length(body), note from public."Doc" order by id')
    assert query(wh, 'select id, md5(body), length(body), note from silver."Doc" order by id') == source_rows


@pytest.mark.parametrize(("plugin_name", "guess"), [("pgoutput", "read"), ("pgoutput", "wrong"), ("wal2json", None)])
def test_unchanged_values_are_found_in_spilled_and_unwritten_transactions(blank_settings: Settings,
                                                                          plugin_name: str, guess: str | None) -> None:
    """Tiny spill and batch sizes: a row's previous version is in a spill file, in a
    transaction not yet written, or in the same transaction; bronze ends up complete. With
    pgoutput a spilled transaction is written early under a commit position found at its Begin
    (medallion.bronze.early): read from the WAL it is right and the early write commits; guessed
    wrong, the early write is rolled back and the transaction written from its spill files, with
    the same bronze."""
    settings = replace(blank_settings, plugin=plugin_name)
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    execute(src, "create table public.first (id int primary key)")
    pipeline.prepare_source(settings)
    pipeline.ingest(settings)
    big = "(select string_agg(md5(random()::text), '') from generate_series(1, 400))"
    execute(src, "create table public.doc (id int primary key, body text, note text)")
    execute(src, f"insert into public.doc select g, {big}, 'new' from generate_series(1, 40) as g")
    execute(src, "begin; update public.doc set note = 'one'; update public.doc set note = 'two' where id % 2 = 0; "
                 "commit")
    for n in range(3):  # small transactions, several to a batch
        execute(src, f"update public.doc set note = 'small {n}' where id = {n + 1}")
    with Ingester(endpoints(settings), settings.slot, settings.config(), batch_size=7, spill_bytes=64 * 1024,
                  plugin=plugin_name) as ingester:
        ingester.start()
        if guess == "wrong":  # not read from the WAL, and every commit record taken as longer than it is
            ingester._guess.src = None
            ingester._guess.lengths[8] = 1_000
        ingester.drain()
        destination = ingester.destination
    if guess is not None:
        assert (destination.early_writes > 0, destination.wrong_guesses > 0) == (guess == "read", guess == "wrong")
    latest = query(wh, "select distinct on ((full_row ->> 'id')::int) (full_row ->> 'id')::int, "
                       "md5(full_row ->> 'body'), full_row ->> 'note' from bronze.br_doc_cdc "
                       "order by (full_row ->> 'id')::int, commit_lsn desc, ordinal desc")
    assert latest == query(src, "select id, md5(body), note from public.doc order by id")
    assert query(wh, "select count(*) from bronze.br_doc_cdc where not full_row ? 'body'") == [(0,)]


def test_prepare_source_leaves_a_keyed_tables_identity_alone_by_default(blank_settings: Settings,
                                                                        tmp_path: Path) -> None:
    src = blank_settings.source_dsn or ""
    env = environment(blank_settings)
    config = tmp_path / "medallion.toml"
    env["MEDALLION_CONFIG"] = str(config)
    execute(src, "create table public.keyed (id int primary key, body text)")
    execute(src, "create table public.configured (at int, kind text)")
    execute(src, "create table public.bare (a int)")

    def identities() -> dict[str, str]:
        return dict(query(src, "select relname::text, relreplident::text from pg_class "
                               "where relname in ('keyed', 'configured', 'bare')"))

    config.write_text('[tables."public.configured"]\nkey = ["at", "kind"]\n')
    prepared = medallion("prepare-source", env=env)
    assert prepared.returncode == 0, prepared.stderr
    # the keyed table keeps its identity; FULL only where there is no key (else it cannot be published)
    assert identities() == {"keyed": "d", "configured": "f", "bare": "f"}
    published = {name for (name,) in query(src, "select tablename::text from pg_publication_tables "
                                                "where pubname = %s", [blank_settings.slot])}
    assert published == {"keyed", "configured", "bare"}
    assert medallion("run", env=env).returncode == 0

    # the option keeps the old behaviour: FULL on every captured table
    config.write_text('[capture]\nreplica_identity = "full"\n')
    assert medallion("prepare-source", env=env).returncode == 0
    assert identities() == {"keyed": "f", "configured": "f", "bare": "f"}


@pytest.mark.parametrize(("plugin_name", "trigger"), [("pgoutput", True), ("wal2json", False)],
                         ids=["ddl-trigger", "wal2json-no-trigger"])
def test_two_quoted_names_that_collide_in_bronze_get_one_name_everywhere(blank_settings: Settings, plugin_name: str,
                                                                         trigger: bool, tmp_path: Path) -> None:
    """"Q S".a_b and "Q S"."a""b" both make bronze."br_Q S__a_b_cdc" (a quote becomes '_'): the one
    created under capture gets a hashed name, and `tables` (before and after), bronze's record and
    silver agree on it, for a table announced by the DDL trigger and for one first seen in the stream
    (wal2json: no publication to add it to)."""
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    env = environment(replace(blank_settings, plugin=plugin_name))
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["Q S.*"]\n[tables.\'Q S."a""b"\']\nsilver = "Q S ab"\n')
    env["MEDALLION_CONFIG"] = str(config)
    execute(src, 'create schema "Q S"')
    execute(src, 'create table "Q S".a_b (id int primary key, v text)')
    execute(src, """insert into "Q S".a_b values (1, 'plain')""")
    assert medallion("prepare-source", env=env).returncode == 0
    if not trigger:
        _drop_ddl_trigger(src)
    assert medallion("run", env=env).returncode == 0

    execute(src, 'create table "Q S"."a""b" (id int primary key, v text)')
    execute(src, """insert into "Q S"."a""b" values (1, 'quoted'), (2, 'quoted')""")

    def shown() -> dict[str, str]:
        listed = medallion("tables", "--format", "json", env=env)
        assert listed.returncode == 0, listed.stderr
        return {t["table"]: t["bronze"] for t in json.loads(listed.stdout)["captured"]}

    before = shown()
    assert before['Q S.a_b'] == 'bronze.br_Q S__a_b_cdc'
    hashed = before['Q S."a""b"']
    assert hashed.startswith('bronze.br_Q S__a_b_cdc_') and hashed != before['Q S.a_b']
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    assert f"into {hashed}" in ran.stderr  # the ingest's own line names it so
    assert shown() == before
    assert query(wh, "select distinct 'bronze.' || bronze_table from bronze.table_schema "
                     "where table_name = 'a\"b'") == [(hashed,)]
    assert query(wh, 'select id, v from silver."Q S ab" order by id') == [(1, "quoted"), (2, "quoted")]
    assert query(wh, 'select id, v from silver."Q S__a_b" order by id') == [(1, "plain")]
