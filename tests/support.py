"""Small helpers for tests: databases of the test cluster and one-statement SQL."""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psycopg
from psycopg import sql

from medallion.settings import Settings
from medallion.source.cluster import EmbeddedCluster


def environment(settings: Settings) -> dict[str, str]:
    """Environment for running the `medallion` command against a test's private pipeline."""
    env = dict(os.environ)
    for name in ("MEDALLION_CONFIG", "PAGILA_DIR", "MEDALLION_PLUGIN"):
        env.pop(name, None)
    env.update(MEDALLION_SOURCE_DSN=settings.source_dsn or "", MEDALLION_WAREHOUSE_DSN=settings.warehouse_dsn or "",
               MEDALLION_SLOT=settings.slot, MEDALLION_HOME=str(settings.home))
    if settings.pagila_dir:
        env["PAGILA_DIR"] = str(settings.pagila_dir)
    if settings.config_path:
        env["MEDALLION_CONFIG"] = str(settings.config_path)
    if settings.plugin:
        env["MEDALLION_PLUGIN"] = settings.plugin
    return env


def medallion(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The `medallion` command, as a user runs it: from a folder without a medallion.toml (the
    configuration is MEDALLION_CONFIG's, or none), not from the repository's Pagila project."""
    return run_command(list(args), env=env, cwd=tempfile.gettempdir(), timeout=timeout)


def run_command(args: list[str], env: dict[str, str], cwd: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`medallion args` in a process of its own, run in cwd: forked from a warm process that has
    imported medallion and dbt already (tests/warm_cli.py); MEDALLION_TEST_COLD_CLI=1 starts
    `python -m medallion.cli` instead."""
    if not os.environ.get("MEDALLION_TEST_COLD_CLI") and _WARM.lock.acquire(blocking=False):
        try:
            result = _WARM.run(args, env, cwd, timeout)
        finally:
            _WARM.lock.release()
        if result is not None:
            return result
    return subprocess.run(_argv(args), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "medallion.cli", *args]


class _WarmCli:
    """The test worker's end of tests/warm_cli.py: started at the first command, one command at a
    time (a second thread's command runs cold meanwhile); None from run() when it is gone."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server: subprocess.Popen[bytes] | None = None
        self.buffer = b""

    def _start(self) -> subprocess.Popen[bytes]:
        if self.server is None or self.server.poll() is not None:
            self.server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("warm_cli.py"))],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                                           cwd=tempfile.gettempdir())
            self.buffer = b""
            atexit.register(self.server.kill)
        return self.server

    def _reply(self, timeout: float | None) -> dict | None:
        """The server's next line, or None when it has ended (or timeout seconds passed)."""
        assert self.server is not None and self.server.stdout is not None
        fd = self.server.stdout.fileno()
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([fd], [], [], timeout)
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def run(self, args: list[str], env: dict[str, str], cwd: str,
            timeout: float) -> subprocess.CompletedProcess[str] | None:
        argv = _argv(args)  # what a cold run's CompletedProcess would name
        server = self._start()
        assert server.stdin is not None
        with tempfile.TemporaryDirectory(prefix="medallion-cli-") as folder:
            out, err = Path(folder) / "stdout", Path(folder) / "stderr"
            request = {"args": args, "env": env, "cwd": cwd, "stdout": str(out), "stderr": str(err)}
            try:
                server.stdin.write(json.dumps(request).encode() + b"\n")
                started = self._reply(60)
            except OSError:
                started = None
            if started is None:
                server.kill()
                self.server = None
                return None  # the warm process is gone: this command runs cold
            ended = self._reply(timeout)
            if ended is None:
                os.kill(started["pid"], signal.SIGKILL)
                if self._reply(60) is None:
                    self.server = None
                raise subprocess.TimeoutExpired(argv, timeout, out.read_text(), err.read_text())
            return subprocess.CompletedProcess(argv, ended["code"], out.read_text(), err.read_text())


_WARM = _WarmCli()


def one_error_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The command failed (exit code `code`; `status` says 2: it cannot tell) with exactly one
    'error: ' line, last, and no traceback."""
    assert result.returncode == code, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr  # progress notes may come first
    assert "Traceback" not in result.stderr
    return errors[0]


def create_database(cluster: EmbeddedCluster, name: str, template: str | None = None) -> str:
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        query = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("{} template {}").format(query, sql.Identifier(template))
        conn.execute(query)
    return cluster.dsn(name)


def drop_database(cluster: EmbeddedCluster, name: str) -> None:
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        for (slot,) in conn.execute(
                "select slot_name from pg_replication_slots where database = %s", [name]).fetchall():
            conn.execute("select pg_drop_replication_slot(%s)", [slot])
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def execute(dsn: str, statement: str, params: object = None) -> None:
    """Run one statement in its own transaction (each step of a scripted history commits)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement, params)


def query(dsn: str, statement: str, params: object = None) -> list[tuple]:
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        return conn.execute(statement, params).fetchall()


def schema_dump(dsn: str, schema: str) -> dict[str, list[str]]:
    """Every table, partition and view of a schema as ordered row texts: two builds are equal
    row for row when their dumps are. (medallion.follow_step and medallion.stored_build, the statements
    a build stores for the next one, are left out: a full build stores none for gold, an
    incremental one does.)"""
    relations = query(dsn, "select c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
                           "where n.nspname = %s and c.relkind in ('r', 'p', 'v') "
                           "and c.relname not in ('follow_step', 'stored_build') "
                           "order by 1", [schema])
    dump = {}
    for (name,) in relations:
        statement = sql.SQL("select t::text from {} as t order by 1").format(sql.Identifier(schema, name))
        dump[name] = [row[0] for row in query(dsn, statement)]
    return dump
