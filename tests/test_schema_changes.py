"""Schema changes in the source: silver follows them on the next run, and history stays true.

A source that is not Pagila goes through ADD COLUMN (nullable, then NOT NULL DEFAULT with no row
touched), an update of the new column, DROP COLUMN, RENAME COLUMN, CREATE TABLE with rows, and
type changes that widen, with updates and deletes around each, and `medallion run` after some
steps only. At quiet checkpoints the source's content and time are recorded; at the end silver's
<t>_as_of(checkpoint) must hold exactly that content (nulls stripped on both sides, so a column
that did not exist yet compares as absent), and a --full-refresh must give the same silver.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from medallion.settings import Settings
from support import environment, execute, medallion, one_error_line, query, schema_dump

TABLES = ["account", "ledger", "late"]

STEPS: list[tuple[list[str], bool]] = [  # (statements, run medallion afterwards)
    (["alter table account add column email text, add column tags text[]",
      "update account set email = 'a' || id || '@example.org', tags = '{new,\"a b\"}' where id <= 2",
      "update account set balance = balance + 1 where id = 3"], False),
    (["alter table account add column tier text not null default 'basic'"], True),
    (["update account set tier = 'gold' where id = 1",
      "delete from account where id = 2",
      "insert into account (id, name, balance) values (4, 'Dee', 4.00)"], False),
    (["alter table account drop column email, drop column tags",
      "update account set name = 'Carl' where id = 3"], True),
    (["create table late (id int primary key, qty int)",
      "alter table late replica identity full",
      "insert into late values (1, 10), (2, 20)"], False),
    (["alter table late alter column qty type bigint",
      "insert into late values (3, 5000000000)",
      "update late set qty = qty + 1 where id = 1",
      "delete from late where id = 2"], True),
    (["alter table account rename column name to full_name",
      "alter table ledger rename column account_id to owner_id",
      "update account set full_name = 'Anna' where id = 1"], False),
    (["alter table ledger alter column note type varchar(60), alter column amount type numeric(12,2)",
      "update ledger set note = 'a note longer than twenty characters' where id = 1",
      "insert into ledger values (3, 1, 1234567.25, 'big')"], False),
]


def content(dsn: str) -> tuple[object, dict[str, Counter]]:
    """The source's time and content now, each row as its non-null (column, value) pairs."""
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        at = conn.execute("select clock_timestamp()").fetchone()[0]
        tables = {}
        for table in TABLES:
            if conn.execute("select to_regclass(%s) is null", [f"public.{table}"]).fetchone()[0]:
                tables[table] = Counter()
                continue
            cur = conn.execute(sql.SQL("select * from {}").format(sql.Identifier("public", table)))
            tables[table] = rows_of(cur)
    return at, tables


def rows_of(cur: psycopg.Cursor) -> Counter:
    names = [c.name for c in cur.description]
    return Counter(frozenset((n, tuple(v) if isinstance(v, list) else v) for n, v in zip(names, row)
                             if v is not None and not n.startswith("sys_"))
                   for row in cur.fetchall())


def silver_as_of(dsn: str, table: str, at: object) -> Counter:
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        names = [c.name for c in conn.execute(
            sql.SQL("select * from {} limit 0").format(sql.Identifier("silver", f"{table}_hist"))).description]
        columns = sql.SQL(", ").join(sql.Identifier(n) for n in names if not n.startswith("sys_"))
        cur = conn.execute(sql.SQL("select {} from {}(%s)").format(
            columns, sql.Identifier("silver", f"{table}_as_of")), [at])
        return rows_of(cur)


def columns_of(dsn: str, schema: str, table: str) -> dict[str, str]:
    return dict(query(dsn, "select attname, format_type(atttypid, atttypmod) from pg_attribute "
                           "where attrelid = format('%%I.%%I', %s::text, %s::text)::regclass "
                           "and attnum > 0 and not attisdropped", [schema, table]))


def test_history_follows_every_schema_change_at_its_own_time(blank_settings: Settings) -> None:
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    env = environment(blank_settings)
    execute(src, "create table account (id int primary key, name text, balance numeric(10,2))")
    execute(src, "create table ledger (id bigint primary key, account_id int, amount numeric(8,2), note varchar(20))")
    execute(src, "insert into account values (1, 'Ann', 1.00), (2, 'Bob', 2.00), (3, 'Cy', 3.00)")
    execute(src, "insert into ledger values (1, 1, 10.50, 'first'), (2, 3, -3.25, null)")
    prepared = medallion("prepare-source", env=env)
    assert prepared.returncode == 0 and "DDL trigger" in prepared.stdout, prepared.stdout + prepared.stderr
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr

    checkpoints = [content(src)]
    for statements, run_after in STEPS:
        for statement in statements:
            execute(src, statement)
        checkpoints.append(content(src))
        if run_after:
            ran = medallion("run", env=env)
            assert ran.returncode == 0, ran.stderr
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr

    for number, (at, tables) in enumerate(checkpoints):
        for table in TABLES:
            assert silver_as_of(wh, table, at) == tables[table], f"{table} as of checkpoint {number}"

    # the default is every old row's value from the ALTER's own commit on, with no row touched
    tier = query(wh, "select id, tier, sys_start from silver.account_hist where tier = 'basic' "
                     "and id = 3 order by sys_start limit 1")
    schema_event = query(wh, "select commit_ts from bronze.table_schema where bronze_table = 'br_account_cdc' "
                             "and columns::text like '%%\"tier\"%%' order by commit_lsn limit 1")
    assert tier[0][2] == schema_event[0][0]

    # the history has the source's columns and types, and those the source dropped or renamed
    source = columns_of(src, "public", "account")
    history = columns_of(wh, "silver", "account_hist")
    assert {k: v for k, v in history.items() if k in source} == source
    assert set(history) - set(source) == {"email", "tags", "name", "sys_start", "sys_end",
                                                "sys_known_from", "sys_known_to"}
    assert columns_of(wh, "silver", "late_hist")["qty"] == "bigint"
    ledger = columns_of(wh, "silver", "ledger_hist")
    assert (ledger["note"], ledger["amount"]) == ("character varying(60)", "numeric(12,2)")
    # a dropped or renamed column of a type other than text ends typed (null::text[], null::integer)
    assert (history["tags"], ledger["account_id"], ledger["owner_id"]) == ("text[]", "integer", "integer")

    before = schema_dump(wh, "silver")
    rebuilt = medallion("build", "--full-refresh", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert schema_dump(wh, "silver") == before


def test_a_narrowing_type_change_names_the_table_column_types_and_fix(blank_settings: Settings,
                                                                      tmp_path: Path) -> None:
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["public.*"]\n')
    settings = replace(blank_settings, config_path=config)
    env = environment(settings)
    execute(src, "create table price (id int primary key, amount numeric(6,2))")
    execute(src, "insert into price values (1, 12.34), (2, 5.00)")
    assert medallion("prepare-source", env=env).returncode == 0
    assert medallion("run", env=env).returncode == 0
    execute(src, "alter table price alter column amount type numeric(4,1)")
    execute(src, "update price set amount = 7.5 where id = 2")

    line = one_error_line(medallion("run", env=env))
    assert ("price_hist: column amount of public.price changed type from numeric(6,2) to numeric(4,1), which the "
            "history cannot hold in place: set column_types = { amount = \"text\" }") in line
    assert '[tables."public.price"] in medallion.toml' in line
    # the documented fix keeps the history: a type that holds both
    config.write_text('[capture]\ninclude = ["public.*"]\n[tables."public.price"]\ncolumn_types = { amount = "numeric" }\n')
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    assert query(wh, "select id, amount::text from silver.price_hist order by id, sys_start") == [
        (1, "12.34"), (1, "12.3"), (2, "5.00"), (2, "7.5")]


def test_the_fix_a_narrowing_change_suggests_works_as_written(blank_settings: Settings, tmp_path: Path) -> None:
    """The error's own advice, followed literally (column_types = { note = "text" }), makes the next
    build and a full refresh pass: the schema event converts the current versions to the source's
    new type and then to the history's (text), not to the source's type alone ("text = integer")."""
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    config = tmp_path / "medallion.toml"
    config.write_text('[capture]\ninclude = ["public.*"]\n')
    env = environment(replace(blank_settings, config_path=config))
    execute(src, "create table memo (id int primary key, note text)")
    execute(src, "insert into memo values (1, '10'), (2, '20'), (3, ' 30')")
    assert medallion("prepare-source", env=env).returncode == 0
    assert medallion("run", env=env).returncode == 0
    execute(src, "alter table memo alter column note type integer using note::integer")
    execute(src, "update memo set note = 21 where id = 2")

    line = one_error_line(medallion("run", env=env))
    fix = 'column_types = { note = "text" }'
    assert fix in line and '[tables."public.memo"]' in line, line
    config.write_text(f'[capture]\ninclude = ["public.*"]\n[tables."public.memo"]\n{fix}\n')
    for args in ((), ("--full-refresh",)):
        ran = medallion("build", *args, env=env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        # ' 30' became 30 at the type change (the source converted it), 20 became 21 by an update
        assert query(wh, "select id, note from silver.memo_hist order by id, sys_start") == [
            (1, "10"), (2, "20"), (2, "21"), (3, " 30"), (3, "30")], args
        assert query(wh, "select id, note from silver.memo order by id") == [(1, "10"), (2, "21"), (3, "30")]
