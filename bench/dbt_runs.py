"""dbt invocations the benchmark needs beyond `medallion build`: one model, or the snapshot yardstick."""

from __future__ import annotations

import time
from pathlib import Path

from medallion import transform
from medallion.db import endpoints
from medallion.errors import BuildFailed
from medallion.settings import DBT_PROJECT_DIR, Settings

SNAPSHOT_PROJECT = Path(__file__).resolve().parent / "snapshot_project"


def invoke(settings: Settings, args: list[str]) -> float:
    """Run one dbt command in-process against the warehouse; returns seconds."""
    from dbt.cli.main import dbtRunner

    began = time.perf_counter()
    with transform.dbt_profile(endpoints(settings).warehouse):
        outcome = dbtRunner().invoke(args)
    if not outcome.success:
        raise BuildFailed(f"dbt {' '.join(args[:3])} failed: {outcome.exception}", node=None, failed=[])
    return time.perf_counter() - began


def build_selected(settings: Settings, select: str, full_refresh: bool = False, command: str = "build") -> float:
    """`dbt build` (models and tests) or `dbt run` (models only) of the selected models."""
    args = transform.dbt_args(settings, command, full_refresh, tuple(select.split()))
    return invoke(settings, args)


def snapshot(settings: Settings) -> float:
    work = settings.home / "dbt-snapshot"
    return invoke(settings, ["snapshot", "--project-dir", str(SNAPSHOT_PROJECT),
                             "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(work / "target"),
                             "--log-path", str(work / "logs"), "--quiet"])
