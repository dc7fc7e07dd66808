"""Every failure is one actionable line on stderr and exit 1: malformed DSNs, closed ports, bad
numbers, vanished slots, bugs. Passwords never show, in any of libpq's DSN forms."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from medallion import pipeline
from medallion.cli import cli
from medallion.db import redact
from medallion.settings import Settings
from support import execute, medallion, one_error_line, query


def with_dsns(source: str, warehouse: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION_")}
    return dict(env, MEDALLION_SOURCE_DSN=source, MEDALLION_WAREHOUSE_DSN=warehouse or source)


@pytest.mark.parametrize(("dsn", "command", "expected"), [
    ("host=x port=notanumber", ["status"], "MEDALLION_SOURCE_DSN has port='notanumber', which is not a number"),
    ("host=x port=notanumber", ["build"], "MEDALLION_SOURCE_DSN has port='notanumber', which is not a number"),
    ("host=/tmp dbname=", ["ingest"], "MEDALLION_SOURCE_DSN has an empty dbname"),
    ("host=/tmp password='a b c", ["query", "select 1"],
     "MEDALLION_SOURCE_DSN is not a valid connection string (host=/tmp password=***)"),
    ("hots=db.example.com dbname=shop", ["tables"], 'invalid connection option "hots"'),
])
def test_malformed_dsn_is_one_line_naming_the_variable(dsn: str, command: list[str], expected: str) -> None:
    """DSNs are checked once, before psycopg, psycopg2 or dbt sees them (each fails its own way)."""
    line = one_error_line(medallion(*command, env=with_dsns(dsn)), 2 if command == ["status"] else 1)
    assert expected in line
    assert "b c" not in line


@pytest.mark.parametrize("command", [["status"], ["query", "select 1"]])
def test_closed_port_keeps_the_reason(command: list[str]) -> None:
    line = one_error_line(medallion(*command, env=with_dsns("host=127.0.0.1 port=1 dbname=x user=u")),
                          2 if command == ["status"] else 1)
    assert 'connection to server at "127.0.0.1", port 1 failed: Connection refused' in line
    assert "Is the server running on that host" in line  # libpq's hint kept too, on the same line


@pytest.mark.parametrize(("dsn", "shown"), [
    ("host=db password='a b c' dbname=x", "host=db password=*** dbname=x"),
    ("host=db password=plain dbname=x", "host=db password=*** dbname=x"),
    ("host=db password = 'it\\'s' dbname=x", "host=db password = *** dbname=x"),
    ("host=db sslpassword=key password=pw", "host=db sslpassword=*** password=***"),
    ("postgresql://u:secret@db:5432/x", "postgresql://u:***@db:5432/x"),
    ("postgres://u@db/x?sslmode=require&password=secret&user=v", "postgres://u@db/x?sslmode=require&password=***&user=v"),
    ("postgresql://u:p%40ss@db/x?password=two", "postgresql://u:***@db/x?password=***"),
])
def test_passwords_are_redacted_in_every_form(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown


@pytest.mark.parametrize("dsn", ["host=127.0.0.1 port=1 dbname=x password='a b c'",
                                 "postgresql://u:sekrit@127.0.0.1:1/x?password=sekrit2"])
def test_messages_never_show_a_password(dsn: str) -> None:
    line = one_error_line(medallion("status", env=with_dsns(dsn)), 2)
    assert "***" in line and "sekrit" not in line and "a b c" not in line and "b c'" not in line


@pytest.mark.parametrize("args", [
    ["simulate", "-n", "-5"], ["simulate", "--transactions", "0"], ["simulate", "--rate", "-3"],
    ["simulate", "--seconds", "0"], ["ingest", "--batch-size", "-1"], ["ingest", "--wait", "-1"],
    ["scale", "--factor", "0"], ["ui", "--port", "0"], ["ui", "--port", "70000"],
])
def test_out_of_range_numbers_are_refused_in_one_line(args: list[str]) -> None:
    line = one_error_line(medallion(*args, env=with_dsns("host=127.0.0.1 port=1 dbname=x")))
    assert "Invalid value for" in line and f"see 'medallion {args[0]} --help'" in line


@pytest.mark.parametrize(("args", "expected"), [
    (["frobnicate"], "No such command 'frobnicate': see 'medallion --help'"),
    (["ingest", "--bogus"], "No such option '--bogus': see 'medallion ingest --help'"),
    (["reset"], "aborted: nothing was changed"),  # the confirmation, answered with end of input
])
def test_usage_errors_are_one_line_too(args: list[str], expected: str) -> None:
    line = one_error_line(medallion(*args, env=with_dsns("host=127.0.0.1 port=1 dbname=x")))
    assert line == f"error: {expected}"


def test_every_command_turns_failures_into_one_line() -> None:
    ctx = click.Context(cli)  # the example's commands too (entry points of medallion.commands)
    commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    assert {"demo", "load-pagila", "simulate", "scale"} <= set(commands)
    unguarded = [name for name, command in commands.items() if not getattr(command.callback, "friendly", False)]
    assert not unguarded, f"commands without @friendly_errors: {unguarded}"


def test_a_bug_is_one_line_naming_the_log_with_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Settings) -> None:
        raise RuntimeError("boom near password='a b c'")

    monkeypatch.setattr(pipeline, "status", broken)
    result = CliRunner().invoke(cli, ["status"], env={"MEDALLION_HOME": str(tmp_path)})
    log = tmp_path / "errors.log"
    assert result.exit_code == 2  # status cannot tell
    assert result.stderr.strip() == (f"error: unexpected RuntimeError: boom near password=***; the traceback is in "
                                     f"{log} (please report it)")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text and "a b c" not in text


def follow(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "medallion.cli", "ingest", "--follow"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate: object, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_reset_is_refused_while_an_ingester_follows(settings: Settings, cli_env: dict[str, str]) -> None:
    pipeline.ingest(settings)
    proc = follow(cli_env)
    try:
        wait_for(lambda: query(settings.source_dsn or "", "select 1 from pg_stat_activity where "
                                                        "application_name = 'medallion-source' and pid <> "
                                                        "pg_backend_pid() and datname = current_database()"),
                 "the ingester never connected")
        time.sleep(1)
        line = one_error_line(medallion("reset", "--yes", env=cli_env))
        assert f"an ingester is running on slot {settings.slot} (source backend pid" in line
        assert "stop it" in line
        assert proc.poll() is None, "the ingester should keep running"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert medallion("reset", "--yes", env=cli_env).returncode == 0  # free once the ingester is gone


@pytest.mark.parametrize("vanish", ["drop schema bronze cascade", "slot"])
def test_bronze_or_slot_dropped_under_a_follower_is_one_line(settings: Settings, cli_env: dict[str, str],
                                                            vanish: str) -> None:
    pipeline.ingest(settings)
    proc = follow(cli_env)
    try:
        execute(settings.source_dsn or "", "update store set last_update = now() where store_id = 1")
        wait_for(lambda: query(settings.warehouse_dsn or "", "select 1 from bronze.br_store_cdc where op = 'U'"),
                 "the change never reached bronze")
        if vanish == "slot":
            wait_for(lambda: _drop_slot(settings), "the slot stayed active")
        else:
            execute(settings.warehouse_dsn or "", vanish)
        execute(settings.source_dsn or "", "update store set last_update = now() where store_id = 2")
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    line = one_error_line(subprocess.CompletedProcess([], 1, "", stderr))
    if vanish == "slot":  # the follower reconnects, finds the slot gone and names the remedy
        assert f"slot {settings.slot} is gone from the source (dropped)" in line and "medallion resync" in line
    else:
        assert "while ingesting on slot" in line and "run 'medallion ingest' again" in line


def _drop_slot(settings: Settings) -> bool:
    """Drop the slot under the streaming follower: end its walsender, then drop it before the
    follower reconnects (it is active again as soon as it does)."""
    try:
        execute(settings.source_dsn or "", "select pg_terminate_backend(active_pid) from pg_replication_slots "
                                           "where slot_name = %s and active_pid is not null", [settings.slot])
        execute(settings.source_dsn or "", "select pg_drop_replication_slot(%s)", [settings.slot])
        return True
    except Exception:  # ObjectInUse: the follower was quicker; try again
        return False


def test_a_lost_connection_is_told_apart_from_a_refused_statement(settings: Settings, tmp_path: Path) -> None:
    """Errors without a name in medallion: a broken link says so (not 'please report it'); a
    statement PostgreSQL refuses says what it refused. Both name the log."""
    import psycopg

    from medallion.errorlog import describe

    log = tmp_path / "errors.log"
    with pytest.raises(psycopg.OperationalError) as lost:
        psycopg.connect("host=127.0.0.1 port=1 dbname=x")
    assert describe(lost.value, log).startswith("the connection to PostgreSQL failed: connection to server at "
                                                '"127.0.0.1", port 1 failed: Connection refused')
    with psycopg.connect(settings.source_dsn or "") as conn, pytest.raises(psycopg.Error) as refused:
        conn.execute("select 1 / 0")
    assert describe(refused.value, log) == (f"PostgreSQL refused a statement: division by zero (SQLSTATE 22012); "
                                            f"the traceback is in {log}")
