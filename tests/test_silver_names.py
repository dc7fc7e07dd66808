"""Source names silver must take as they are: columns named like the engine's own (n, op, lsn,
commit_ts, ...), a schema and table whose names hold a double quote, spaces and a dot, and
declared keys, which are checked rather than trusted.

Each history must equal the source after a snapshot and after changes, and a --full-refresh must
give the same silver.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from medallion.settings import Settings
from support import environment, execute, medallion, one_error_line, query, schema_dump

QUOTED = '"Quoted_"" . Schema"."Quoted_"" . Table"'
# every name the engine's macros use for their own columns, as source columns
ENGINE_NAMES = ["n", "op", "lsn", "commit_lsn", "ordinal", "commit_ts", "load_ts", "source_table", "image",
                "full_row", "old_row", "effective_ts", "next_lsn", "next_ordinal", "next_ts", "next_load_ts",
                "event_ts", "last_commit_ts", "seed", "reopened", "problem", "source_row"]
SCHEMA = f"""
create table clash (id int primary key, {", ".join(f'"{c}" text' for c in ENGINE_NAMES)});
create schema "Quoted_"" . Schema";
create table {QUOTED} (id int primary key, "Note "" . x" text);
create table plain (id int primary key, v text);
"""


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["public.*", \'"Quoted_"" . Schema".*\']\n' + extra, encoding="utf-8")
    return config


def _source_rows(src: str, table: str) -> list[tuple]:
    return query(src, f"select * from {table} order by id")


def _silver_rows(wh: str, relation: str, width: int) -> list[tuple]:
    return [row[:width] for row in query(wh, f"select * from {relation} order by id")]


def test_engine_column_names_and_a_quoted_schema_and_table_build(blank_settings: Settings, tmp_path: Path) -> None:
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    env = environment(replace(blank_settings, config_path=_config(tmp_path)))
    execute(src, SCHEMA)
    values = ", ".join(f"'{c}-1'" for c in ENGINE_NAMES)
    execute(src, f"insert into clash values (1, {values}), (2, {values.replace('-1', '-2')})")
    execute(src, f"insert into {QUOTED} values (1, 'a'), (2, 'b')")
    execute(src, "insert into plain values (1, 'x'), (2, 'y')")
    assert medallion("prepare-source", env=env).returncode == 0
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    for statement in ("update clash set n = 'n-changed', op = 'D', lsn = '0' where id = 1",
                      "delete from clash where id = 2", "insert into clash (id, n) values (3, 'three')",
                      f"update {QUOTED} set \"Note \"\" . x\" = 'a2' where id = 1",
                      f"delete from {QUOTED} where id = 2", f"insert into {QUOTED} values (3, 'c')",
                      "update plain set v = 'x2' where id = 1"):
        execute(src, statement)
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr

    quoted_silver = 'silver."Quoted__ . Schema__Quoted__ . Table"'
    expected = {"silver.clash": ("clash", len(ENGINE_NAMES) + 1), quoted_silver: (QUOTED, 2),
                "silver.plain": ("plain", 2)}
    for relation, (source, width) in expected.items():
        assert _silver_rows(wh, relation, width) == _source_rows(src, source), relation
    assert query(wh, "select count(*) from silver.clash_hist") == [(4,)]
    before = schema_dump(wh, "silver")
    ran = medallion("build", "--full-refresh", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert schema_dump(wh, "silver") == before


KEYLESS = "create table reading (at timestamptz not null, kind text not null, value int)"
DECLARED = '[tables."public.reading"]\nkey = ["at", "kind"]\n'
NOT_UNIQUE = "public.reading: the key (at, kind) declared in medallion.toml is not unique: two rows with (at, kind) = ("


def test_a_declared_key_two_rows_share_fails_the_build_in_one_line(blank_settings: Settings, tmp_path: Path) -> None:
    """After a change: an insert under a declared key whose row is live fails the build, naming the
    table, the key and the value (before: silver kept one row per key and the tests passed)."""
    src = blank_settings.source_dsn or ""
    config = _config(tmp_path, DECLARED)
    env = environment(replace(blank_settings, config_path=config))
    execute(src, KEYLESS)
    execute(src, "insert into reading values ('2026-01-01 00:00+00', 'a', 1), ('2026-01-01 00:00+00', 'b', 2)")
    assert medallion("prepare-source", env=env).returncode == 0
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    shown = medallion("tables", "--format", "json", env=env)
    assert [t["key_origin"] for t in __import__("json").loads(shown.stdout)["captured"]] == ["declared"]
    assert "at, kind (declared)" in medallion("tables", env=env).stdout

    execute(src, "insert into reading values ('2026-01-01 00:00+00', 'b', 3)")
    line = one_error_line(medallion("run", env=env))
    assert NOT_UNIQUE in line and ",b) are live at once" in line, line
    assert 'set key under [tables."public.reading"]' in line
    # a delete of the other row, then the insert again: one row live at a time, which passes
    execute(src, "delete from reading where value = 3")
    config.write_text(config.read_text().replace('["at", "kind"]', '["at", "kind", "value"]'))
    ran = medallion("build", "--full-refresh", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_a_declared_key_the_snapshot_repeats_fails_the_first_build(blank_settings: Settings, tmp_path: Path) -> None:
    src = blank_settings.source_dsn or ""
    env = environment(replace(blank_settings, config_path=_config(tmp_path, DECLARED)))
    execute(src, KEYLESS)
    execute(src, "insert into reading select '2026-01-01 00:00+00'::timestamptz + (i % 4) * interval '1 hour', 'k', i "
                 "from generate_series(1, 200) as i")
    assert medallion("prepare-source", env=env).returncode == 0
    line = one_error_line(medallion("run", env=env))
    assert NOT_UNIQUE in line and ",k) are live at once" in line, line


def test_a_column_silver_takes_is_renamed_and_excluding_or_dropping_a_table_is_accepted(
        blank_settings: Settings, tmp_path: Path) -> None:
    """A source column named sys_start: the table gets no history until column_names renames it,
    said in one note naming the column and that fix, which then builds; excluding a table bronze
    holds is accepted (it was refused: 'no longer selects it'), and dropping a table ends its
    history; the other tables build throughout."""
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    config = _config(tmp_path)
    env = environment(replace(blank_settings, config_path=config))
    execute(src, "create table periods (id int primary key, sys_start text, n int); "
                 "create table plain (id int primary key, v text); "
                 "insert into periods values (1, 'then', 1), (2, 'now', 2); insert into plain values (1, 'x'), (2, 'y')")
    assert medallion("prepare-source", env=env).returncode == 0
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    said = [line for line in (ran.stdout + ran.stderr).splitlines() if "'sys_start'" in line]
    assert len(said) == 1 and "public.periods has a column named 'sys_start'" in said[0], ran.stdout + ran.stderr
    fix = 'column_names = { sys_start = "source_sys_start" }'
    assert fix in said[0] and '[tables."public.periods"]' in said[0], said[0]
    assert query(wh, "select count(*) from silver.plain_hist") == [(2,)]

    config.write_text(config.read_text() + f'[tables."public.periods"]\n{fix}\n')
    execute(src, "update periods set sys_start = 'later', n = 3 where id = 1")
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert query(wh, "select id, source_sys_start, n from silver.periods order by id") == \
        query(src, "select * from periods order by id")
    assert query(wh, "select count(*) from silver.periods_hist") == [(3,)]
    before = schema_dump(wh, "silver")
    ran = medallion("build", "--full-refresh", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert schema_dump(wh, "silver") == before

    config.write_text(config.read_text().replace("[capture]\n", '[capture]\nexclude = ["public.periods"]\n'))
    execute(src, "update plain set v = 'x2' where id = 1")
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "public.periods is in bronze but" in ran.stdout + ran.stderr
    assert query(wh, "select id, v from silver.plain order by id") == [(1, "x2"), (2, "y")]

    execute(src, "drop table plain")
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert query(wh, "select count(*) from silver.plain") == [(0,)]
    assert query(wh, "select count(*) from silver.plain_hist where sys_end <> 'infinity'") == [(3,)]
