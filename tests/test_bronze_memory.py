"""Memory is bounded by configuration, not by transaction size, and a SIGKILL in the middle of a
large transaction loses and doubles nothing.

One source transaction of 300,000 inserts. The ingester holds at most SPILL_BYTES of an open
transaction in memory and parks the rest in local spill files (medallion.bronze.spill), written
to bronze once at the commit. It is killed twice: while the transaction is being spilled, then
while its rows are being COPYed into bronze; restarted, it must land every change once, with
the peak RSS of the run that completes under 256 MB (VmHWM, read from /proc).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medallion import pipeline
from medallion.bronze.spill import SPILL_PREFIX
from medallion.settings import Settings
from support import execute, query

pytestmark = pytest.mark.parametrize("plugin", ["pgoutput", "wal2json"], indirect=True)

CHANGES = 300_000
BUDGET_MB = 256


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set so far (VmHWM); None once it has exited (a zombie has none)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def ingest_process(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "medallion.cli", "ingest", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_300k_change_transaction_stays_in_budget_and_survives_a_sigkill(settings: Settings,
                                                                           cli_env: dict[str, str]) -> None:
    pipeline.ingest(settings)
    wh = settings.warehouse_dsn or ""
    execute(settings.source_dsn or "", "insert into actor (first_name, last_name) "
                                       "select 'Big', 'Transaction ' || g from generate_series(1, %s) as g",
            [CHANGES])
    before = query(wh, "select count(*) from bronze.br_actor_cdc")[0][0]

    def spilling(pid: int) -> bool:  # holds a spill file (unlinked at creation: "(deleted)")
        try:
            return any(SPILL_PREFIX in os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            return False

    def copying() -> bool:  # the big transaction's COPY into its bronze table is under way
        return bool(query(wh, "select 1 from pg_stat_progress_copy where relid = 'bronze.br_actor_cdc'::regclass "
                              "and tuples_processed > 0"))

    for under_way, what in ((spilling, "spilled"), (lambda _: copying(), "COPYed into bronze")):
        killed = ingest_process(cli_env, "--follow", "--batch-size", "10000")
        deadline = time.monotonic() + 120
        while not under_way(killed.pid):
            assert killed.poll() is None, killed.communicate()[0]
            assert time.monotonic() < deadline, f"the open transaction was never {what}"
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)  # part of the transaction is spilled or copied, none committed
        killed.communicate()
        assert query(wh, "select count(*) from bronze.br_actor_cdc")[0][0] == before, what

    second = ingest_process(cli_env, "--batch-size", "10000")
    peak = 0.0
    while second.poll() is None:
        try:
            now = peak_rss_mb(second.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        if now is None:
            break
        peak = max(peak, now)
        time.sleep(0.02)
    output = second.communicate()[0]
    assert second.returncode == 0, output
    assert 0 < peak < BUDGET_MB, f"peak RSS {peak:.0f} MB"

    rows = query(wh, "select count(*), count(distinct full_row->>'last_name'), count(distinct commit_lsn) "
                     "from bronze.br_actor_cdc where op = 'I'")
    assert rows == [(CHANGES, CHANGES, 1)]  # every change once, all of one transaction
    assert query(wh, "select count(*) from bronze.ingest_spill")[0][0] == 0
