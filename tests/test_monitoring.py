"""Watching the pipeline from the tools a team already has: `medallion status --json` with exit codes
a monitor can use (0 healthy, 1 at risk, 2 cannot tell), and Prometheus metrics served by the
long-running `run --follow`, both from the same evaluation (medallion/health.py).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from medallion import pipeline
from medallion.metrics import Metrics
from medallion.settings import Settings
from pagila_example import api as example
from support import environment, execute, medallion, one_error_line

METRICS = ("medallion_slot_lag_bytes", "medallion_wal_retained_bytes", "medallion_changes_total",
           "medallion_silver_freshness_seconds", "medallion_last_build_timestamp_seconds",
           "medallion_build_failures_total", "medallion_snapshot_rows_total", "medallion_capture_at_risk",
           "medallion_status_code")
APP_SCHEMA = """
create schema "App Data";
create table "App Data"."Order Line" (id text primary key, v text);
create table "App Data".other (id integer primary key, v text);
insert into "App Data"."Order Line" select 'k' || g, 'v' || g from generate_series(1, 5) g;
"""


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def status_json(env: dict[str, str], code: int) -> dict:
    shown = medallion("status", "--json", env=env)
    assert shown.returncode == code, shown.stdout + shown.stderr
    return json.loads(shown.stdout)


def _config(tmp_path: Path, extra: str = "", name: str = "medallion.toml") -> Path:
    path = tmp_path / name
    path.write_text('[capture]\ninclude = ["App Data.Order*"]\n' + extra)
    return path


def test_status_json_and_exit_codes_agree_with_the_metrics(blank_settings: Settings, tmp_path: Path) -> None:
    settings = replace(blank_settings, config_path=_config(tmp_path))
    src = settings.source_dsn or ""
    env = environment(settings)
    execute(src, APP_SCHEMA)
    pipeline.prepare_source(settings)
    pipeline.ingest(settings)

    healthy = status_json(env, 0)
    assert healthy["status"] == "healthy" and healthy["findings"] == [] and healthy["error"] is None
    assert healthy["slot"]["name"] == settings.slot and healthy["slot"]["exists"] is True
    assert isinstance(healthy["lag_bytes"], int) and isinstance(healthy["retained_wal_bytes"], int)
    assert healthy["tables"] == {"br_App Data__Order Line_cdc": 5}, healthy["tables"]
    assert healthy["bronze"]["last_commit_lsn"] in medallion("status", env=env).stdout  # what status shows
    assert set(healthy) == {"version", "status", "exit_code", "error", "findings", "lag_bytes", "retained_wal_bytes",
                            "shared_cluster", "slot", "bronze", "gaps", "silver", "tables"}
    scraped = samples(Metrics(settings).scrape())
    assert scraped[("medallion_status_code", ())] == 0
    assert scraped[("medallion_wal_retained_bytes", ())] >= healthy["retained_wal_bytes"]  # WAL only grows

    # WAL the slot holds (an unselected table's traffic) past a tiny [status] max_retained_wal_bytes
    execute(src, 'insert into "App Data".other select g, repeat(\'x\', 200) from generate_series(1, 2000) g')
    tight = replace(settings, config_path=_config(tmp_path, "[status]\nmax_retained_wal_bytes = 65536\n", "t.toml"))
    at_risk = status_json(environment(tight), 1)
    assert at_risk["status"] == "at_risk" and at_risk["exit_code"] == 1
    retained = [f for f in at_risk["findings"] if f["check"] == "retained_wal"]
    assert len(retained) == 1 and retained[0]["title"] == "retained WAL", at_risk["findings"]
    assert "max_retained_wal_bytes (65,536)" in retained[0]["message"] and at_risk["retained_wal_bytes"] > 65536
    scraped = samples(Metrics(tight).scrape())
    assert scraped[("medallion_status_code", ())] == 1
    assert scraped[("medallion_capture_at_risk", (("check", "retained_wal"),))] == 1
    assert scraped[("medallion_capture_at_risk", (("check", "slot"),))] == 0

    # the slot dropped: at risk, naming resync
    execute(src, "select pg_drop_replication_slot(%s)", [settings.slot])
    gone = status_json(env, 1)
    assert gone["slot"]["exists"] is False and gone["lag_bytes"] is None
    assert [(f["check"], f["title"]) for f in gone["findings"]] == [("slot", "slot dropped")], gone["findings"]
    assert "run 'medallion resync'" in gone["findings"][0]["message"]
    assert samples(Metrics(settings).scrape())[("medallion_capture_at_risk", (("check", "slot"),))] == 1

    # cannot tell (the source unreachable): still one document, with the error, and exit 2
    unreachable = dict(env, MEDALLION_SOURCE_DSN="postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=2")
    shown = medallion("status", "--json", env=unreachable)
    assert "cannot reach the source database" in one_error_line(shown, 2)
    unknown = json.loads(shown.stdout)
    assert unknown["status"] == "unknown" and unknown["exit_code"] == 2 and unknown["lag_bytes"] is None
    assert "cannot reach the source database" in unknown["error"]
    cut = replace(settings, source_dsn="postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=2")
    assert samples(Metrics(cut).scrape())[("medallion_status_code", ())] == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def test_run_follow_serves_metrics_that_move_under_simulate(settings: Settings, tmp_path: Path) -> None:
    config = tmp_path / "medallion.toml"  # two of Pagila's tables, no gold: a short first build
    config.write_text('[capture]\ninclude = ["public.rental", "public.customer"]\n')
    settings = replace(settings, config_path=config)
    port = _free_port()
    log = tmp_path / "follow.log"
    with log.open("w") as stderr:
        follower = subprocess.Popen([sys.executable, "-m", "medallion.cli", "run", "--follow", "--metrics-port",
                                     str(port)], env=environment(settings), cwd=tempfile.gettempdir(),
                                    stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        deadline = time.monotonic() + 180
        while "following the source" not in log.read_text():
            assert follower.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        first = samples(_scrape(port))
        traffic = threading.Thread(target=example.simulate, args=(settings,),
                                   kwargs={"seed": 5, "transactions": None, "seconds": 3.0, "rate": 30.0})
        traffic.start()
        seen = []
        while traffic.is_alive() or len(seen) < 8:
            seen.append(samples(_scrape(port)))
            time.sleep(0.4)
        traffic.join()
        time.sleep(1.5)  # the follower applies the last batch
        last = samples(_scrape(port))
        text = _scrape(port)
    finally:
        follower.send_signal(signal.SIGTERM)
        out, _ = follower.communicate(timeout=120)
    assert follower.returncode == 0, log.read_text()
    assert f"metrics at http://127.0.0.1:{port}/metrics" in log.read_text()
    for name in METRICS:
        assert f"# TYPE {name} " in text, name
    assert last[("medallion_status_code", ())] == 0
    assert first[("medallion_snapshot_rows_total", (("table", "public.rental"),))] == 16044
    assert last[("medallion_changes_total", (("table", "br_rental_cdc"),))] > 0
    assert last[("medallion_build_failures_total", ())] == 0
    assert last[("medallion_last_build_timestamp_seconds", ())] > first[("medallion_last_build_timestamp_seconds", ())]
    lags = {s[("medallion_slot_lag_bytes", ())] for s in [first, *seen, last]}
    freshness = [s[("medallion_silver_freshness_seconds", ())] for s in [first, *seen, last]]
    assert len(lags) > 1, lags
    assert len(set(freshness)) > 1 and max(freshness) < 60, freshness  # seconds behind, and moving


def test_ingest_follow_counts_changes_per_table_on_the_loopback(blank_settings: Settings, tmp_path: Path) -> None:
    settings = replace(blank_settings, config_path=_config(tmp_path, "[metrics]\nport = %d\n" % _free_port()))
    port = settings.config().metrics.port
    src = settings.source_dsn or ""
    execute(src, APP_SCHEMA)
    pipeline.prepare_source(settings)
    env = environment(settings)
    log = tmp_path / "ingest.log"
    with log.open("w") as stderr:
        ingester = subprocess.Popen([sys.executable, "-m", "medallion.cli", "ingest", "--follow"], env=env,
                                    cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    try:
        deadline = time.monotonic() + 60
        while "following the source" not in log.read_text():
            assert ingester.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        taken = medallion("ingest", "--follow", env=env, timeout=60)  # a second one: the port is taken
        assert f"cannot serve metrics on 127.0.0.1:{port}" in one_error_line(taken)
        execute(src, 'insert into "App Data"."Order Line" select \'n\' || g, \'x\' from generate_series(1, 3) g')
        changes = ("medallion_changes_total", (("table", "br_App Data__Order Line_cdc"),))
        while samples(_scrape(port)).get(changes) != 3:
            assert time.monotonic() < deadline + 30, _scrape(port)
            time.sleep(0.2)
        scraped = samples(_scrape(port))
    finally:
        ingester.send_signal(signal.SIGTERM)
        ingester.wait(60)
    assert ingester.returncode == 0, log.read_text()
    assert scraped[("medallion_snapshot_rows_total", (("table", "App Data.Order Line"),))] == 5, scraped
    assert scraped[("medallion_status_code", ())] == 0 and scraped[("medallion_slot_lag_bytes", ())] >= 0
