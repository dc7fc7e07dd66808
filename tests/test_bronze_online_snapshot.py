"""Online snapshots (medallion/bronze/online_snapshot.py): a table whose past rows are not in the
stream is read in chunks between watermarks while capture runs, without a lock; every row lands
in bronze once and silver's current view equals the source.

The publication here lists tables (FOR TABLE), as a pipeline role that is not a superuser gets
it: a table created later is not in it until its owner adds it."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from medallion.settings import Settings
from online_workload import Workload, bronze_state as _bronze_state, snapshot_done as _snapshot_done, wait as _wait
from support import environment, execute, medallion, one_error_line, query

SCHEMA = "odd Schema"
NEW = "New Thing"
CHUNK = "7"  # rows per chunk: many windows


def _env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "medallion.toml"
    config.write_text(f'[capture]\ninclude = ["{SCHEMA}.*"]\n')
    env = environment(settings)
    env["MEDALLION_CONFIG"] = str(config)
    env["MEDALLION_SNAPSHOT_CHUNK_ROWS"] = CHUNK
    return env


def _table_list_source(settings: Settings) -> None:
    """The source as a non-superuser prepares it: a table-list publication, identities FULL."""
    src = settings.source_dsn or ""
    execute(src, sql.SQL("create schema {}").format(sql.Identifier(SCHEMA)))
    execute(src, sql.SQL("create table {} (id text primary key, v int)").format(sql.Identifier(SCHEMA, "first")))
    execute(src, sql.SQL("alter table {} replica identity full").format(sql.Identifier(SCHEMA, "first")))
    execute(src, sql.SQL("insert into {} values ('a', 1)").format(sql.Identifier(SCHEMA, "first")))
    execute(src, sql.SQL("create publication {} for table {}").format(
        sql.Identifier(settings.slot), sql.Identifier(SCHEMA, "first")))


def _create_new(src: str, rows: int) -> None:
    execute(src, sql.SQL("create table {} (region text, seq int, v text, primary key (region, seq))").format(
        sql.Identifier(SCHEMA, NEW)))
    execute(src, sql.SQL("alter table {} replica identity full").format(sql.Identifier(SCHEMA, NEW)))
    execute(src, sql.SQL("insert into {} select r, seq, 'v0' from unnest(array['north', 'South', 'éast']) as r, "
                         "generate_series(1, %s) as seq").format(sql.Identifier(SCHEMA, NEW)), [rows])


def _publish_new(settings: Settings) -> None:
    """What `medallion prepare-source` does for the table as its owner: add it to the list."""
    execute(settings.source_dsn or "", sql.SQL("alter publication {} add table {}").format(
        sql.Identifier(settings.slot), sql.Identifier(SCHEMA, NEW)))


def _source_rows(src: str) -> list[tuple]:
    return query(src, sql.SQL("select region, seq, v from {} order by 1, 2").format(sql.Identifier(SCHEMA, NEW)))


def _follow(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "medallion.cli", "ingest", "--follow"], env=env,
                            cwd=tempfile.gettempdir(), stdout=log.open("w"), stderr=subprocess.STDOUT)


def _stop(follower: subprocess.Popen) -> None:
    follower.send_signal(signal.SIGINT)
    follower.wait(timeout=60)


def _check_equal(settings: Settings, env: dict[str, str]) -> None:
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    bronze = query(wh, "select bronze_table from bronze.online_snapshot")[0][0]
    # no key is snapshotted twice, and the snapshot rows with the stream's give the source exactly
    assert query(wh, sql.SQL("select full_row->>'region', full_row->>'seq' from {} where op = 'R' and xid is not null "
                             "group by 1, 2 having count(*) > 1").format(sql.Identifier("bronze", bronze))) == []
    assert _bronze_state(wh, bronze) == _source_rows(src)
    tables = dict(query(wh, "select table_name ~ '_hist', table_name from information_schema.tables "
                            "where table_schema = 'silver' and table_name ilike '%%new%%thing%%' "
                            ""))
    assert query(wh, sql.SQL("select region, seq, v from {} order by 1, 2").format(
        sql.Identifier("silver", tables[False]))) == _source_rows(src)
    # the history's current versions are the source's rows too
    hist = query(wh, sql.SQL("select region, seq, v from {} where sys_end = 'infinity' order by 1, 2").format(
        sql.Identifier("silver", tables[True])))
    assert hist == _source_rows(src)


def test_a_table_published_later_gets_every_row_once(blank_settings: Settings, tmp_path: Path) -> None:
    src = blank_settings.source_dsn or ""
    env = _env(blank_settings, tmp_path)
    _table_list_source(blank_settings)
    assert (ran := medallion("ingest", env=env)).returncode == 0, ran.stderr
    follower = _follow(env, tmp_path / "follow.log")
    try:
        _wait(lambda: "following the source" in (tmp_path / "follow.log").read_text())
        time.sleep(1.0)
        _create_new(src, 60)  # 180 rows, written before the table is published
        workload = Workload(src, sql.Identifier(SCHEMA, NEW), 60, seed=1)
        workload.start()
        time.sleep(0.5)
        _publish_new(blank_settings)
        _wait(lambda: _snapshot_done(blank_settings.warehouse_dsn or ""))
        time.sleep(0.5)
        workload.stop.set()
        workload.join()
        execute(src, sql.SQL("insert into {} values ('after', 1, 'last')").format(sql.Identifier(SCHEMA, NEW)))
        time.sleep(1.0)
    finally:
        _stop(follower)
    log = (tmp_path / "follow.log").read_text()
    assert "capturing odd Schema.New Thing, new in the source" in log, log
    assert "online snapshot of" in log and "done" in log, log
    chunks = query(blank_settings.warehouse_dsn or "", "select chunks from bronze.online_snapshot")[0][0]
    assert chunks > 10
    _check_equal(blank_settings, env)


def test_sigkill_during_the_online_snapshot_loses_and_doubles_nothing(blank_settings: Settings,
                                                                     tmp_path: Path) -> None:
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    env = _env(blank_settings, tmp_path)
    env["MEDALLION_SNAPSHOT_CHUNK_ROWS"] = "3"
    _table_list_source(blank_settings)
    assert (ran := medallion("ingest", env=env)).returncode == 0, ran.stderr
    _create_new(src, 400)  # 1,200 rows before the table is published: 400 chunks (a quiet machine reads 100 in 2 s)
    workload = Workload(src, sql.Identifier(SCHEMA, NEW), 100, seed=2)
    workload.start()
    _publish_new(blank_settings)
    chance = random.Random(3)
    kills = 0
    try:
        # each follower is killed soon after it wrote a chunk of its own (not after a fixed time,
        # which a loaded machine spent starting the process: then no kill fell inside the snapshot)
        for _ in range(4):
            before = _chunks_done(wh)
            follower = _follow(env, tmp_path / f"follow{kills}.log")
            _wait(lambda: _snapshot_done(wh) or _chunks_done(wh) > before)
            time.sleep(chance.uniform(0.0, 0.5))
            follower.send_signal(signal.SIGKILL)
            follower.wait(timeout=30)
            kills += 1
            if _snapshot_done(wh):
                break
    finally:
        workload.stop.set()
        workload.join()
    done = query(wh, "select chunks, rows from bronze.online_snapshot")
    logs = "".join((tmp_path / f"follow{n}.log").read_text() for n in range(kills))
    assert kills >= 2 and done, logs
    _check_equal(blank_settings, env)  # `medallion run` finishes what the kills left
    assert query(wh, "select finished_ts is not null from bronze.online_snapshot") == [(True,)]


def _chunks_done(wh: str) -> int:
    """The chunks the online snapshot has in bronze; -1 before it began."""
    try:
        found = query(wh, "select chunks from bronze.online_snapshot")
    except psycopg.errors.UndefinedTable:
        return -1
    return found[0][0] if found else -1


def _dump(dsn: str, statement: sql.Composable) -> list[tuple]:
    """Rows as text ('infinity' included)."""
    return sorted(query(dsn, sql.SQL("select d::text from ({}) as d").format(statement)))


def test_resync_of_one_table_repairs_it_under_load_and_leaves_the_others_alone(blank_settings: Settings,
                                                                             tmp_path: Path) -> None:
    src, wh = blank_settings.source_dsn or "", blank_settings.warehouse_dsn or ""
    env = _env(blank_settings, tmp_path)
    _table_list_source(blank_settings)
    _create_new(src, 40)
    _publish_new(blank_settings)
    assert (ran := medallion("run", env=env)).returncode == 0, ran.stderr
    table = sql.Identifier(SCHEMA, NEW)
    # changes bronze never gets: made while the table was out of the publication
    execute(src, sql.SQL("alter publication {} drop table {}").format(sql.Identifier(blank_settings.slot), table))
    execute(src, sql.SQL("delete from {} where seq % 5 = 0").format(table))
    execute(src, sql.SQL("update {} set v = 'unseen' where seq % 7 = 0").format(table))
    _publish_new(blank_settings)
    execute(src, sql.SQL("insert into {} values ('north', 1000, 'seen')").format(table))
    execute(src, sql.SQL("update {} set v = 2 where id = 'a'").format(sql.Identifier(SCHEMA, "first")))
    assert (ran := medallion("run", env=env)).returncode == 0, ran.stderr
    assert _source_rows(src) != query(wh, sql.SQL("select region, seq, v from {} order by 1, 2").format(
        sql.Identifier("silver", _silver_tables(wh)[False])))
    first_bronze = sql.SQL("select * from bronze.{}").format(
        sql.Identifier("br_odd Schema__first_cdc"))
    first_hist = sql.SQL("select * from silver.{}").format(
        sql.Identifier(_silver_tables(wh, "first")[True]))
    before = (_dump(wh, first_bronze), _dump(wh, first_hist))
    workload = Workload(src, sql.Identifier(SCHEMA, NEW), 40, seed=4)
    workload.start()
    try:
        resynced = medallion("resync", "--table", f'"{SCHEMA}"."{NEW}"', env=env)
    finally:
        workload.stop.set()
        workload.join()
    assert resynced.returncode == 0, resynced.stderr
    assert "re-synced odd Schema.New Thing online" in resynced.stdout, resynced.stdout
    assert workload.done > 20
    _check_equal(blank_settings, env)
    assert (_dump(wh, first_bronze), _dump(wh, first_hist)) == before
    # the deletes bronze never got end at the snapshot: D rows, not a silent ghost
    assert query(wh, sql.SQL("select count(*) from {} where op = 'D' and xid is null").format(
        sql.Identifier("bronze", "br_odd Schema__New Thing_cdc")))[0][0] >= 5


def _silver_tables(wh: str, like: str = "new%thing") -> dict[bool, str]:
    return dict(query(wh, "select table_name ~ '_hist', table_name from information_schema.tables "
                          "where table_schema = 'silver' and table_name ilike %s", [f"%{like}%"]))


def test_a_table_published_while_following_with_no_change_after_is_read_whole(blank_settings: Settings,
                                                                              tmp_path: Path) -> None:
    """The issue's case: the first rows are in silver once the table is published, whoever did it,
    with no further change to bring it to the ingester's notice."""
    src = blank_settings.source_dsn or ""
    env = _env(blank_settings, tmp_path)
    _table_list_source(blank_settings)
    assert (ran := medallion("ingest", env=env)).returncode == 0, ran.stderr
    log = tmp_path / "follow.log"
    follower = _follow(env, log)
    try:
        _wait(lambda: "following the source" in log.read_text())
        time.sleep(1.0)
        _create_new(src, 5)
        time.sleep(1.0)
        _publish_new(blank_settings)
        _wait(lambda: _snapshot_done(blank_settings.warehouse_dsn or ""), 60)
    finally:
        _stop(follower)
    assert "capturing odd Schema.New Thing, new to bronze" in log.read_text()
    _check_equal(blank_settings, env)
    # its history before the snapshot is not known: a question about then says so; --strict refuses
    hist = _silver_tables(blank_settings.warehouse_dsn or "")[True]
    whole_from = query(blank_settings.warehouse_dsn or "", "select max(finished_ts) from bronze.online_snapshot")[0][0]
    statement = sql.SQL("select count(*) from silver.{} for system_time as of '{}'").format(
        sql.Identifier(hist), sql.SQL(str(whole_from - timedelta(seconds=1)))).as_string()
    warned = medallion("query", "--format", "csv", statement, env=env)
    assert warned.returncode == 0 and f"but the history of silver.{hist} is whole only from" in warned.stderr, \
        warned.stderr
    line = one_error_line(medallion("query", "--strict", statement, env=env))
    assert "its earlier rows were read by an online snapshot" in line
    later = statement.replace(str(whole_from - timedelta(seconds=1)), str(whole_from + timedelta(seconds=1)))
    assert "is whole only from" not in medallion("query", "--format", "csv", later, env=env).stderr


def test_the_watermarks_and_chunks_need_no_superuser(blank_settings: Settings) -> None:
    """What an online snapshot does on the source (watermark messages, chunk reads, the publication
    check) works for a role that may only log in and read the table: no superuser, no REPLICATION,
    nothing created on the source. pgoutput delivers the watermarks (messages 'true')."""
    from psycopg.conninfo import make_conninfo

    from medallion.bronze.online_snapshot import PREFIX, OnlineSnapshots, chunk_key
    from medallion.errors import SelectionError
    from medallion.source.catalog import read_tables

    src = blank_settings.source_dsn or ""
    _table_list_source(blank_settings)
    _create_new(src, 4)
    _publish_new(blank_settings)
    execute(src, "drop role if exists online_plain")
    execute(src, "create role online_plain login nosuperuser noreplication")
    execute(src, sql.SQL("grant usage on schema {} to online_plain").format(sql.Identifier(SCHEMA)))
    execute(src, sql.SQL("grant select on {} to online_plain").format(sql.Identifier(SCHEMA, NEW)))
    execute(src, "select pg_create_logical_replication_slot('online_probe', 'pgoutput')")
    try:
        with psycopg.connect(src) as conn:
            table = next(t for t in read_tables(conn) if t.name == NEW)
        online = OnlineSnapshots(make_conninfo(src, user="online_plain"), "", blank_settings.slot, "pgoutput",
                                 lambda _: None, chunk_rows=5)
        online.add("br_new", table, chunk_key(table, None), "published later")
        online.tick()
        assert online.window is not None and len(online.window.rows) == 5 and not online.window.final
        online.close()
        # a table with no key to order chunks by is refused in one line that names the fix
        execute(src, sql.SQL("create table {} (at timestamptz, kind text)").format(sql.Identifier(SCHEMA, "keyless")))
        with psycopg.connect(src) as conn:
            keyless = next(t for t in read_tables(conn) if t.name == "keyless")
        with pytest.raises(SelectionError) as refused:
            chunk_key(keyless, None)
        assert str(refused.value) == ('"odd Schema".keyless has no primary key: an online snapshot reads it in key '
                                      'order; declare one in medallion.toml ([tables."odd Schema.keyless"] key = [...])')
        assert chunk_key(keyless, ("at", "kind")) == ("at", "kind")
        assert query(src, "select rolsuper or rolreplication from pg_roles where rolname = 'online_plain'") == \
            [(False,)]
        messages = query(src, "select count(*) from pg_logical_slot_peek_binary_changes('online_probe', null, null, "
                              "'proto_version', '1', 'publication_names', %s, 'messages', 'true') "
                              "where position(%s::bytea in data) > 0", [blank_settings.slot, PREFIX.encode()])
        assert messages == [(2,)]  # the low and the high watermark
    finally:
        execute(src, "select pg_drop_replication_slot('online_probe')")
        execute(src, sql.SQL("drop owned by online_plain"))
        execute(src, "drop role online_plain")
