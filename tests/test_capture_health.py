"""Never silent about capture at risk: an interrupted re-sync, a lost slot, WAL piling up, a table
the publication does not send.

A re-sync killed after it created its slot (SIGKILL, or a broken pipe from `resync | head -1`)
once left a healthy-looking slot that starts past every change of the gap: `run` resumed from it,
exited 0, and the gap was lost for good. Bronze now records the re-sync's intent before it touches
the slot; until the epoch is written, `status` exits 1 naming `medallion resync` and the next
`run` finishes the re-sync. `status` exits 0 healthy, 1 at risk, 2 when it cannot tell.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from medallion import pipeline
from medallion.settings import Settings
from support import environment, execute, medallion, one_error_line, query

TABLES = ("a_small", "b_big", "c_small")
SCHEMA = """
create table a_small (id integer primary key, v text);
create table b_big (id integer primary key, v text);
create table c_small (id integer primary key, v text);
insert into a_small select g, 'a' || g from generate_series(1, 20) g;
insert into b_big select g, md5(g::text) from generate_series(1, 200000) g;
insert into c_small select g, 'c' || g from generate_series(1, 20) g;
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "medallion.cli", *args]


def _at_risk_naming_resync(env: dict[str, str]) -> None:
    shown = medallion("status", env=env)
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert "run 'medallion resync'" in shown.stderr, shown.stderr


def _kill_when_slot_exists(env: dict[str, str], src: str, slot: str) -> None:
    """SIGKILL `medallion resync` the moment its new slot exists on the source."""
    process = subprocess.Popen(_cli("resync"), env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        with psycopg.connect(src, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while not conn.execute("select 1 from pg_replication_slots where slot_name = %s", [slot]).fetchone():
                assert process.poll() is None, "resync ended before it created its slot"
                assert time.monotonic() < deadline
                time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def _kill_during_snapshot(env: dict[str, str]) -> None:
    """SIGKILL `medallion resync` once its first table is copied (the big one is being copied)."""
    process = subprocess.Popen(_cli("resync"), env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        assert line.startswith("re-sync public.a_small"), line
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()


def _current(dsn: str, table: str, schema: str = "public") -> list[tuple]:
    return query(dsn, sql.SQL("select id, v from {} order by id").format(sql.Identifier(schema, table)))


def test_an_interrupted_resync_is_finished_never_resumed_past_the_gap(blank_settings: Settings) -> None:
    settings = blank_settings
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    env = environment(settings)
    execute(src, SCHEMA)
    pipeline.prepare_source(settings)
    pipeline.ingest(settings)
    execute(src, "update a_small set v = 'before the gap' where id = 1")
    pipeline.ingest(settings)
    assert medallion("status", env=env).returncode == 0

    execute(src, "select pg_drop_replication_slot(%s)", [settings.slot])  # the loss
    execute(src, "update a_small set v = 'in the gap' where id = 2")
    execute(src, "delete from c_small where id = 3")
    execute(src, "insert into b_big values (0, 'born in the gap')")

    _kill_when_slot_exists(env, src, settings.slot)
    execute(src, "update a_small set v = 'after the first kill' where id = 4")
    _at_risk_naming_resync(env)  # main: the new slot looked healthy, status exited 0

    _kill_during_snapshot(env)
    execute(src, "update c_small set v = 'after the second kill' where id = 5")
    _at_risk_naming_resync(env)

    piped = subprocess.run(" ".join(_cli("resync")) + " 2>&1 | head -1", shell=True, env=env,
                           cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=120)
    assert piped.stdout.startswith("re-sync public.a_small"), piped.stdout + piped.stderr
    _at_risk_naming_resync(env)

    ran = medallion("run", env=env)
    assert ran.returncode == 0, ran.stderr
    assert f"finishing the re-sync of slot {settings.slot} that was interrupted" in ran.stderr
    assert query(wh, "select reason from bronze.capture_gap") == [("dropped",)]
    for table in TABLES:
        assert _current(wh, table, "silver") == _current(src, table), table
    assert query(wh, "select v from silver.a_small_hist where id = 1 order by sys_start") == \
        [("a1",), ("before the gap",)]  # history before the gap is kept
    healthy = medallion("status", env=env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "gap: slot dropped" in healthy.stdout
