"""The build project as dagster-dbt's DbtProject, prepared by medallion.orchestration.parse.

The project is generated at every load (from bronze's record of the captured tables), so it is
prepared at every load: dagster-dbt's own preparer acts only under `dagster dev`, and through a
dbt subprocess; parse_when_stale parses in process, only when a file changed.
"""

from __future__ import annotations

from dagster_dbt import DbtProject

from medallion.orchestration.parse import parsed_build_project
from medallion.settings import Settings


def dbt_project(settings: Settings) -> DbtProject:
    """The build project of these settings, generated now, with an up-to-date manifest."""
    target = settings.home / "dbt" / "dagster"
    parsed = parsed_build_project(settings, target)
    project = DbtProject(project_dir=parsed.path, profiles_dir=parsed.path, target_path=target)  # absolute target
    assert project.manifest_path == parsed.manifest
    return project
