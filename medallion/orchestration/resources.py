"""Resources: the pipeline's Settings, as the `medallion` command resolves them, and the dbt CLI.

The Settings are not restated field by field as Dagster config: the resource IS the Settings
(`load_settings()` of the environment the code location runs in, which `medallion ui` hands to
`dagster dev`), so every field the command honours (MEDALLION_PLUGIN, MEDALLION_QUERY_DSN, the
analyst role, the project file, ...) reaches a Dagster run too, and no DSN shows in the UI's config.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from medallion.db import endpoints
from medallion.settings import Settings
from medallion.transform import dbt_profile


@dataclass(frozen=True)
class MedallionResource:
    """Where the pipeline runs: the resolved Settings (without DSNs, the embedded cluster under
    settings.home, which must be up: `medallion up`). Assets ask for it as ResourceParam."""

    settings: Settings

    @contextmanager
    def dbt_profile(self) -> Iterator[None]:
        """The build project's profiles.yml reads MEDALLION_DBT_*: set them for the dbt subprocess
        (it inherits os.environ when it starts), and restore them afterwards."""
        with dbt_profile(endpoints(self.settings).warehouse):
            yield


def dbt_executable() -> str:
    """medallion-dbt beside this interpreter (the venv's; dbt with the gold planner that plain
    marts need), which need not be on PATH."""
    beside = Path(sys.executable).parent / "medallion-dbt"
    return str(beside) if beside.exists() else (shutil.which("medallion-dbt") or "medallion-dbt")


def dbt_resource(project: DbtProject) -> DbtCliResource:
    return DbtCliResource(project_dir=project, dbt_executable=dbt_executable())
