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
import threading
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
insert into b_big select g, md5(g::text) from generate_series(1, 100000) g;
insert into c_small select g, 'c' || g from generate_series(1, 20) g;
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "medallion.cli", *args]


def _at_risk_naming_resync(env: dict[str, str]) -> None:
    shown = medallion("status", env=env)
    for _ in range(20):  # the killed process's source session may outlive it for a moment
        if "re-sync under way" not in shown.stderr:
            break
        time.sleep(0.25)
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


APP_SCHEMA = """
create schema app;
create table app.t1 (id integer primary key, v text);
create table app.other (id integer primary key, v text);
insert into app.t1 select g, 't' || g from generate_series(1, 5) g;
"""


def _config(tmp_path: Path, extra: str = "", name: str = "medallion.toml") -> Path:
    path = tmp_path / name
    path.write_text('[capture]\ninclude = ["app.t*"]\n' + extra)
    return path


def _findings(shown: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in shown.stderr.splitlines() if line.strip()]


def test_status_exit_code_says_whether_capture_is_at_risk(blank_settings: Settings, tmp_path: Path) -> None:
    settings = replace(blank_settings, config_path=_config(tmp_path))
    src = settings.source_dsn or ""
    env = environment(settings)
    execute(src, APP_SCHEMA)
    before = medallion("status", env=env)
    assert before.returncode == 0 and "not created yet" in before.stdout, before.stdout + before.stderr
    pipeline.prepare_source(settings)
    pipeline.ingest(settings)
    healthy = medallion("status", env=env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "retained WAL" in healthy.stdout and "lag" in healthy.stdout

    # WAL the slot holds: an unselected table's traffic, with thresholds of a few kB in medallion.toml
    execute(src, "insert into app.other select g, repeat('x', 200) from generate_series(1, 2000) g")
    tight = environment(replace(settings, config_path=_config(
        tmp_path, '[status]\nmax_lag_bytes = "64kB"\nmax_retained_wal_bytes = 65536\n', "tight.toml")))
    shown = medallion("status", env=tight)
    assert shown.returncode == 1, shown.stdout + shown.stderr
    lines = _findings(shown)
    assert any(line.startswith("lag: slot") and "max_lag_bytes (65,536)" in line and "'medallion ingest'" in line
               for line in lines), lines
    assert any(line.startswith("retained WAL: the source keeps") and "max_retained_wal_bytes (65,536)" in line
               for line in lines), lines
    bad = medallion("status", env=environment(replace(settings, config_path=_config(
        tmp_path, "[status]\nmax_lag_bytes = -3\n", "bad.toml"))))
    assert "[status] max_lag_bytes must be a positive size" in one_error_line(bad, 2)

    # a table the selection matches that the publication does not send (a publication that lists
    # tables, as without a superuser): status and run name it and the fix
    execute(src, sql.SQL("alter publication {} set table app.t1").format(sql.Identifier(settings.slot)).as_string())
    _without_a_superuser(src)
    execute(src, "create table app.t2 (id integer primary key, v text)")
    unpublished = medallion("status", env=env)
    assert unpublished.returncode == 1, unpublished.stdout + unpublished.stderr
    assert f"unpublished: publication {settings.slot} does not send app.t2, which the selection matches: its rows " \
           "are not captured; run 'medallion prepare-source'" in _findings(unpublished), unpublished.stderr
    assert "does not send app.t2: run 'medallion prepare-source'" in one_error_line(medallion("ingest", env=env))
    pipeline.prepare_source(settings)
    assert medallion("status", env=env).returncode == 0

    # the slot dropped: at risk, naming resync
    execute(src, "select pg_drop_replication_slot(%s)", [settings.slot])
    gone = medallion("status", env=env)
    assert gone.returncode == 1 and "slot dropped:" in gone.stderr and "run 'medallion resync'" in gone.stderr


def _without_a_superuser(src: str) -> None:
    """As on a source without a superuser: no DDL trigger, so a new table does not join the
    publication by itself (prepare-source, run as a superuser, installs it again)."""
    execute(src, "drop event trigger if exists medallion_ddl_end")
    execute(src, "drop event trigger if exists medallion_ddl_drop")


def _wait_until_streaming(src: str, slot: str) -> None:
    with psycopg.connect(src, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while not conn.execute("select active from pg_replication_slots where slot_name = %s", [slot]).fetchone()[0]:
            assert time.monotonic() < deadline, "the follower never started streaming"
            time.sleep(0.1)


def test_run_follow_names_a_table_the_publication_does_not_send(blank_settings: Settings, tmp_path: Path) -> None:
    settings = replace(blank_settings, config_path=_config(tmp_path))
    src = settings.source_dsn or ""
    execute(src, APP_SCHEMA)
    pipeline.prepare_source(settings)
    execute(src, sql.SQL("alter publication {} set table app.t1").format(sql.Identifier(settings.slot)).as_string())
    _without_a_superuser(src)
    process = subprocess.Popen(_cli("run", "--follow"), env=environment(settings), cwd=tempfile.gettempdir(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = threading.Timer(90, process.kill)  # never hang on a follower that says nothing
    deadline.start()
    try:
        seen: list[str] = []
        for line in process.stderr:
            seen.append(line)
            if line.startswith("following the source"):
                _wait_until_streaming(src, settings.slot)  # past the ingester's start-up checks
                execute(src, "create table app.t3 (id integer primary key, v text)")
                execute(src, "insert into app.t3 values (1, 'unseen')")
                started = time.monotonic()
            if "does not send app.t3" in line:
                assert time.monotonic() - started < 15
                assert not line.startswith("error:"), "".join(seen)  # said while following, not a crash
                assert "run 'medallion prepare-source'" in line
                break
        else:
            raise AssertionError("".join(seen))
    finally:
        deadline.cancel()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()
