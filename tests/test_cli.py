"""The command line: help that teaches, one-line errors that name the fix, follow mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from medallion import pipeline
from medallion.bronze.ingest import Ingester
from medallion.cli import cli
from medallion.db import endpoints
from medallion.settings import Settings
from medallion.source.cluster import EmbeddedCluster
from support import execute, medallion, one_error_line, query


@pytest.mark.parametrize("name", cli.list_commands(click.Context(cli)))  # with the example's (entry points)
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"'medallion {name} --help' shows no example"


def test_unreachable_dsn_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    env = dict(os.environ, MEDALLION_SOURCE_DSN="host=127.0.0.1 port=1 dbname=x user=postgres",
               MEDALLION_WAREHOUSE_DSN="host=127.0.0.1 port=1 dbname=y user=postgres")
    line = one_error_line(medallion("status", env=env), 2)
    assert "cannot reach the source database" in line and "MEDALLION_SOURCE_DSN" in line


def test_pagila_dir_without_files_names_the_fix(cli_env: dict[str, str], tmp_path: Path) -> None:
    line = one_error_line(medallion("load-pagila", env=dict(cli_env, PAGILA_DIR=str(tmp_path))))
    assert f"PAGILA_DIR={tmp_path} lacks pagila-schema.sql, pagila-data.sql" in line


def test_table_without_replica_identity_is_refused_before_anything_is_written(
        settings: Settings, cli_env: dict[str, str]) -> None:
    execute(settings.source_dsn, "alter table store replica identity nothing")
    line = one_error_line(medallion("ingest", env=cli_env))
    assert "public.store has no replica identity" in line
    assert "medallion prepare-source" in line
    assert not query(settings.source_dsn, "select 1 from pg_replication_slots where slot_name = %s", [settings.slot])
    # its primary key as identity (PostgreSQL's default) is enough: captured as it is
    execute(settings.source_dsn, "alter table store replica identity default")
    assert medallion("ingest", env=cli_env).returncode == 0


def test_second_ingester_on_the_same_slot_is_refused(settings: Settings, cli_env: dict[str, str]) -> None:
    with Ingester(endpoints(settings), settings.slot, settings.config()) as first:
        first.start()
        line = one_error_line(medallion("ingest", "--wait", "1", env=cli_env))
    assert f"another ingester is running on slot {settings.slot}" in line
    assert medallion("ingest", env=cli_env).returncode == 0  # free again once the first one is gone


def test_wal_level_not_logical_is_one_line_naming_the_setting(tmp_path_factory: pytest.TempPathFactory,
                                                              cluster: EmbeddedCluster) -> None:
    home = cluster.home.parent / f"{cluster.home.name}-replica"
    replica_only = EmbeddedCluster(home, overrides=(("wal_level", "replica"),))
    replica_only.up()
    try:
        env = dict(os.environ, MEDALLION_SOURCE_DSN=replica_only.dsn("pagila"),
                   MEDALLION_WAREHOUSE_DSN=replica_only.dsn("warehouse"))
        line = one_error_line(medallion("ingest", env=env))
        assert "wal_level=replica" in line and "wal_level = logical" in line
    finally:
        replica_only.down()


def test_follow_streams_until_ctrl_c_and_reports_progress(settings: Settings, cli_env: dict[str, str]) -> None:
    pipeline.ingest(settings)
    proc = subprocess.Popen([sys.executable, "-m", "medallion.cli", "ingest", "--follow"], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        execute(settings.source_dsn, "update store set last_update = now() where store_id = 1")
        deadline = time.monotonic() + 30
        while not query(settings.warehouse_dsn, "select 1 from bronze.br_store_cdc where op = 'U'"):
            assert time.monotonic() < deadline, "the change never reached bronze"
            time.sleep(0.1)
        time.sleep(1.2)  # at least one progress line
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "changes/s" in stderr and "lag" in stderr
    assert "streamed: 1 changes" in stdout


def test_env_prints_exports_that_psql_accepts(cluster: EmbeddedCluster) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION_")}
    env["MEDALLION_HOME"] = str(cluster.home)
    result = medallion("env", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["export MEDALLION_SOURCE_DSN",
                                                         "export MEDALLION_WAREHOUSE_DSN"]
    check = subprocess.run(["bash", "-c", result.stdout + 'psql -X -At "$MEDALLION_SOURCE_DSN" -c "show wal_level"'],
                           capture_output=True, text=True)
    assert check.stdout.strip() == "logical", check.stderr


def test_second_slot_into_the_same_bronze_is_refused(settings: Settings, cli_env: dict[str, str]) -> None:
    """One bronze, one capture: a second slot would append a second snapshot to the same tables."""
    pipeline.ingest(settings)
    counts = query(settings.warehouse_dsn or "", "select count(*) from bronze.br_customer_cdc")
    second = dict(cli_env, MEDALLION_SLOT=f"{settings.slot}_second")
    line = one_error_line(medallion("ingest", env=second))
    assert f"bronze in this warehouse is fed by slot {settings.slot}" in line
    assert "needs its own warehouse database" in line
    assert query(settings.warehouse_dsn or "", "select count(*) from bronze.br_customer_cdc") == counts
    assert not query(settings.source_dsn or "", "select 1 from pg_replication_slots where slot_name = %s",
                     [f"{settings.slot}_second"])
