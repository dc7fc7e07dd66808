"""dbt invocations the benchmark needs beyond `medallion build`: one model, or the snapshot yardstick."""

from __future__ import annotations

import time
from pathlib import Path

from medallion import pipeline, transform
from medallion.db import endpoints
from medallion.errors import BuildFailed
from medallion.settings import Settings
from medallion.silver.project import ENGINE_DIR

SNAPSHOT_PROJECT = Path(__file__).resolve().parent / "snapshot_project"


def invoke(settings: Settings, args: list[str]) -> float:
    """Run one dbt command in-process against the warehouse; returns seconds."""
    from medallion import dbt_run

    began = time.perf_counter()
    with transform.dbt_profile(endpoints(settings).warehouse):
        outcome = dbt_run.invoke(args)
    if not outcome.success:
        raise BuildFailed(f"dbt {' '.join(args[:3])} failed: {outcome.exception}", node=None, failed=[])
    return time.perf_counter() - began


def build_selected(settings: Settings, select: str, full_refresh: bool = False, command: str = "build") -> float:
    """`dbt build` (models and tests) or `dbt run` (models only) of the selected models."""
    began = time.perf_counter()
    pipeline.build(settings, full_refresh, tuple(select.split()), tests=command == "build")
    return time.perf_counter() - began


def snapshot(settings: Settings) -> float:
    work = settings.home / "dbt-snapshot"
    return invoke(settings, ["snapshot", "--project-dir", str(SNAPSHOT_PROJECT),
                             "--profiles-dir", str(ENGINE_DIR), "--target-path", str(work / "target"),
                             "--log-path", str(work / "logs"), "--quiet"])
