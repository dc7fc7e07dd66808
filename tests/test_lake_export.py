"""Bronze to Iceberg exactly once: killed at random points, re-run, nothing appended twice.

The exporter runs as the `medallion export` command with small chunks (many Iceberg commits)
and is killed with SIGKILL at random times, then run again until it finishes. The Iceberg
copy of every bronze table must then hold exactly bronze's rows: no (commit_lsn, ordinal)
twice, none missing, values equal. A second export appends nothing.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from medallion import pipeline
from medallion.lake.export import POSITION, exported_position
from medallion.lake.target import lake_target, open_catalog
from medallion.settings import Settings
from pagila_example import api as example
from lake_support import with_lake
from support import environment, execute, medallion

pytest.importorskip("pyiceberg")


def bronze_rows(settings: Settings, table: str) -> list[tuple]:
    with psycopg.connect(settings.warehouse_dsn or "") as conn:
        return conn.execute(f"select commit_lsn, ordinal, op::text, full_row::text from bronze.{table} "  # noqa: S608
                            "order by 1, 2").fetchall()


def test_export_killed_and_rerun_appends_nothing_twice(settings: Settings, tmp_path: Path) -> None:
    lake = with_lake(settings, tmp_path)
    pipeline.ingest(lake)
    example.simulate(lake, seed=3, transactions=40, rate=None)
    pipeline.ingest(lake)
    env = environment(lake)
    command = [sys.executable, "-m", "medallion.cli", "export", "--chunk-rows", "1500"]
    files = tmp_path / "files"
    # killed once a few chunks are written (a random number of data files: at a commit, between
    # a chunk's file and its commit, or inside a file), then run again
    process = subprocess.Popen(command, env=env, cwd=tempfile.gettempdir(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    written = random.Random(11).randint(2, 6)
    deadline = time.monotonic() + 120
    while process.poll() is None and len(list(files.rglob("*.parquet"))) < written and time.monotonic() < deadline:
        time.sleep(0.02)
    kills = 0
    if process.poll() is None:
        process.kill()
        kills += 1
    process.wait()
    assert kills >= 1, "the exporter finished before any kill: make --chunk-rows smaller"
    finished = subprocess.run(command, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert " rows exported in " in finished.stderr  # progress, a line per Iceberg commit

    catalog = open_catalog(lake_target(lake))
    with psycopg.connect(lake.warehouse_dsn or "") as conn:
        tables = [t for (t,) in conn.execute("select distinct bronze_table from bronze.table_schema").fetchall()]
    for table in tables:
        iceberg = catalog.load_table(("bronze", table))
        copied = iceberg.scan(selected_fields=("commit_lsn", "ordinal", "op", "full_row")).to_arrow()
        rows = sorted(zip(*(copied.column(c).to_pylist() for c in ("commit_lsn", "ordinal", "op", "full_row"))))
        keys = [(r[0], r[1]) for r in rows]
        assert len(keys) == len(set(keys)), f"{table}: a bronze row was appended twice"
        expected = bronze_rows(lake, table)
        assert [(r[0], r[1], r[2]) for r in rows] == [(r[0], r[1], r[2]) for r in expected], table
        assert exported_position(iceberg) == max(r[0] for r in expected)
        assert all(POSITION in (s.summary.additional_properties or {}) for s in iceberg.snapshots()), table
    assert pipeline.export(lake).rows == 0


def test_lake_section_is_checked_and_required(tmp_path: Path, settings: Settings) -> None:
    from dataclasses import replace

    from medallion.config import parse_config
    from medallion.errors import ConfigError, LakeNotConfigured

    path = tmp_path / "medallion.toml"
    with pytest.raises(ConfigError, match=r"unknown key 'warehous' in \[lake\] \(did you mean 'warehouse'\?\)"):
        parse_config('[lake]\nwarehous = "x"\n', path)
    lake = parse_config('[lake]\nwarehouse = "files"\n', path).lake
    assert lake is not None and lake.warehouse == str(tmp_path / "files") and lake.catalog_name == "medallion"
    path.write_text("[capture]\n", encoding="utf-8")
    with pytest.raises(LakeNotConfigured, match=r"has no \[lake\] section: add one"):
        pipeline.export(replace(settings, config_path=path))


def test_a_lake_never_mixes_two_bronzes(blank_settings: Settings, tmp_path: Path) -> None:
    """A lake table holds one bronze's rows: after `medallion reset` (or against another
    warehouse) the export stops in one line naming the fix, and appends nothing."""
    src = blank_settings.source_dsn or ""
    execute(src, "create table public.item (id integer primary key, name text)")
    execute(src, "insert into public.item values (1, 'a'), (2, 'b')")
    lake = with_lake(blank_settings, tmp_path, base=None)
    env = environment(lake)
    for command in (["prepare-source"], ["ingest"], ["export"]):
        done = medallion(*command, env=env)
        assert done.returncode == 0, done.stderr
    with psycopg.connect(lake.warehouse_dsn or "") as conn:
        (table,) = conn.execute("select distinct bronze_table from bronze.table_schema").fetchone()
    exported = open_catalog(lake_target(lake)).load_table(("bronze", table)).scan().to_arrow().num_rows

    for command in (["reset", "--yes"], ["prepare-source"], ["ingest"]):
        done = medallion(*command, env=env)
        assert done.returncode == 0, done.stderr
    execute(src, "insert into public.item values (3, 'c')")
    assert medallion("ingest", env=env).returncode == 0
    again = medallion("export", env=env)
    assert again.returncode == 1, again.stdout
    assert "another bronze" in again.stderr and "drop the lake's tables" in again.stderr, again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr
    assert open_catalog(lake_target(lake)).load_table(("bronze", table)).scan().to_arrow().num_rows == exported
