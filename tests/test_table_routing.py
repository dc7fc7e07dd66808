"""Tables that change identity under capture: renamed, created later with PostgreSQL's defaults.

A renamed table continues its history under its new name (bronze knows it by its relid); a table
created after capture started keeps its unchanged large values whatever its replica identity;
and the publication never makes an UPDATE on the source fail. Non-Pagila schemas with quoted
names, on an empty source database.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

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
