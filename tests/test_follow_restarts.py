"""`run --follow` as an operator meets it in the first month: the first Ctrl-C during its first
dbt build stops it (exit 0, one line); a fast restart of the cluster during its first dbt build
and in steady state is ridden out (the build runs again, the appliers reconnect); `reset` is
refused while it runs, even while no ingester holds the slot (a dbt build); a tested `build`
beside it under traffic never fails a test (gold_marts_agree reads three marts); and at the end
silver and gold equal a full refresh.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from medallion import pipeline
from medallion.settings import Settings
from medallion.source.cluster import EmbeddedCluster
from pagila_example import api as example
from support import execute, medallion, one_error_line, query
from test_follow import warehouse_dump, wait_for

pytestmark = pytest.mark.file_seconds(80)

DBT_CONNECTED = ("select exists (select from pg_stat_activity where datname = current_database() "
                 "and application_name = 'dbt')")

# a statement trigger on the second of the three marts: each refresh of it (the follower's and a
# build's) takes a second, so that silver surely moves between a round's marts under traffic
SLOW_MART = ("create or replace function public.slow_mart() returns trigger language plpgsql as "
             "$$ begin perform pg_sleep(1); return null; end $$; "
             "create trigger slow_mart after insert on gold.vw_store_scorecard "
             "for each statement execute function public.slow_mart()")


class TrafficDone(Exception):
    pass


@contextmanager
def traffic(settings: Settings) -> Iterator[None]:
    """`medallion simulate` at 60 transactions a second while the block runs."""
    done = threading.Event()

    def until_done(_: int) -> None:
        if done.is_set():
            raise TrafficDone

    def run() -> None:
        try:
            example.simulate(settings, seed=11, transactions=None, seconds=600, rate=60, progress=until_done)
        except TrafficDone:
            pass

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def start_follow(cli_env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    log = Path(tempfile.mkstemp(prefix="follow-", suffix=".log")[1])
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "medallion.cli", "run", "--follow"], env=cli_env,
                                cwd=tempfile.gettempdir(), stdout=subprocess.PIPE, stderr=stderr, text=True)
    return proc, log


def dbt_building(wh: str) -> bool:
    try:
        return query(wh, DBT_CONNECTED)[0][0]
    except Exception:  # noqa: BLE001 - the cluster is restarting
        return False


def test_follow_stops_on_first_ctrl_c_rides_out_restarts_and_keeps_reset_and_builds_apart(
        settings: Settings, cli_env: dict[str, str], cluster: EmbeddedCluster) -> None:
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""

    # one Ctrl-C during the first dbt build stops it, soon, with exit 0 and one line
    first, log = start_follow(cli_env)
    try:
        wait_for(lambda: dbt_building(wh), "the first dbt build")
        first.send_signal(signal.SIGINT)
        out, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, log.read_text()
    stopped = [line for line in log.read_text().splitlines() if line.startswith("stopping: the dbt build (")]
    assert len(stopped) == 1 and "was interrupted" in stopped[0], log.read_text()
    assert "stopped:" in out and "Traceback" not in log.read_text()

    # the next follow continues; a restart during its first dbt build runs the build again
    follower, log = start_follow(cli_env)
    try:
        wait_for(lambda: dbt_building(wh), "the second follow's dbt build")
        cluster.restart("fast")
        wait_for(lambda: "lost a connection" in log.read_text() or "restarted during a dbt build" in log.read_text(),
                 "the build cut by the restart")
        wait_for(lambda: dbt_building(wh) or "following the source" in log.read_text(), "the build again")
        # reset is refused while the follower builds (no ingester holds the slot yet)
        line = one_error_line(medallion("reset", "--yes", env=cli_env))
        assert "'medallion run --follow' or a build is using the warehouse" in line, line
        wait_for(lambda: "following the source" in log.read_text(), "steady state")

        # tested builds beside the follower, under traffic from start to end: their tests see one
        # state (without the layers' lock, gold_marts_agree read marts of a round half-way)
        execute(wh, SLOW_MART)
        with traffic(settings):
            for _ in range(2):
                pipeline.build(settings)
        execute(wh, "drop trigger slow_mart on gold.vw_store_scorecard")

        # a restart in steady state: the ingester and both appliers reconnect
        cluster.restart("fast")
        execute(src, "update customer set email = 'restarted@example.org' where customer_id = 9")
        wait_for(lambda: query(wh, "select email from silver.dim_customer where customer_id = 9")
                 == [("restarted@example.org",)], "a change after the restart in silver")
    finally:
        follower.send_signal(signal.SIGTERM)
        out, _ = follower.communicate(timeout=120)
    stderr = log.read_text()
    assert follower.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "reconnected after" in stderr and "silver and gold: lost a connection" in stderr, stderr
    assert "restart" in stderr or "during a dbt build" in stderr, stderr

    followed = warehouse_dump(settings)
    pipeline.build(settings, full_refresh=True)
    assert warehouse_dump(settings) == followed
