"""`medallion ui`: the command line and environment of `dagster dev` for one pipeline.

Kept free of Dagster imports, so that the `medallion` command stays quick to start."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from medallion.settings import REPO_ROOT, Settings

DEFINITIONS_MODULE = "medallion.orchestration.definitions"


@dataclass(frozen=True)
class UiCommand:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    dagster_home: Path
    url: str


def dagster_dev(settings: Settings, host: str = "127.0.0.1", port: int = 3000) -> UiCommand:
    """`dagster dev` (webserver and the daemon that fires schedules) on the pipeline's settings.

    Runs and schedules are kept in DAGSTER_HOME = MEDALLION_HOME/dagster, beside the cluster;
    MEDALLION_HOME is passed on so that the code location finds the same cluster from any cwd."""
    dagster_home = settings.home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance = dagster_home / "dagster.yaml"
    if not instance.exists():  # an offline pipeline: Dagster's usage statistics off, said once
        instance.write_text("telemetry:\n  enabled: false\n")
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home), MEDALLION_HOME=str(settings.home),
               MEDALLION_SLOT=settings.slot)
    executable = Path(sys.executable).parent / "dagster"
    argv = [str(executable) if executable.exists() else "dagster", "dev", "-m", DEFINITIONS_MODULE,
            "-h", host, "-p", str(port)]
    return UiCommand(argv, env, REPO_ROOT, dagster_home, f"http://{host}:{port}")
