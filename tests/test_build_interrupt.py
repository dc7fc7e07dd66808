"""Ctrl-C in a dbt build is one line that says what is kept and what to run, never '...: no message'."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time

import psycopg

from medallion import pipeline
from medallion.settings import Settings
from support import environment, one_error_line


def test_ctrl_c_in_a_full_refresh_says_the_next_build_continues(settings: Settings) -> None:
    pipeline.ingest(settings)
    process = subprocess.Popen([sys.executable, "-m", "medallion.cli", "build", "--full-refresh"],
                               env=environment(settings), cwd=tempfile.gettempdir(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    database = psycopg.conninfo.conninfo_to_dict(settings.warehouse_dsn or "")["dbname"]
    with psycopg.connect(settings.warehouse_dsn or "", autocommit=True) as conn:
        deadline = time.monotonic() + 120
        # dbt is building once one of its connections (application_name 'dbt') runs a statement
        while not conn.execute("select count(*) from pg_stat_activity where datname = %s and pid <> "
                               "pg_backend_pid() and state = 'active' and application_name = 'dbt'",
                               [database]).fetchone()[0]:
            assert process.poll() is None and time.monotonic() < deadline, "the build never started"
            time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    line = one_error_line(result)
    assert "no message" not in line
    assert line.startswith("error: interrupted (Ctrl-C)"), line
    assert "the next 'medallion build' continues" in line or "run the command again" in line, line
    rebuilt = pipeline.build(settings)  # and it does
    assert rebuilt.count("model") > 0
