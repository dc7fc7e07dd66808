"""The build project as dagster-dbt's DbtProject, with a preparer of its own.

The build project is generated from bronze's record of the captured tables, so it is prepared
at every load, not only under `dagster dev` as dagster-dbt's own preparer does (a manifest
prepared at deploy time would miss the next table captured); and it is parsed in process,
only when a file changed (medallion.orchestration.parse), not by a `dbt parse` subprocess.
`dagster-dbt project prepare-and-package` calls the same preparer.
"""

from __future__ import annotations

from pathlib import Path

from dagster_dbt import DbtProject
from dagster_dbt.dbt_project import DbtProjectPreparer
from dagster_shared.record import replace

from medallion.context import Context
from medallion.orchestration.parse import parse_when_stale, watched_files
from medallion.settings import Settings


class BuildProjectPreparer(DbtProjectPreparer):
    """Parses the generated build project into the DbtProject's manifest_path when it is stale."""

    def __init__(self, watched: tuple[Path, ...]) -> None:
        self.watched = watched

    def prepare_if_dev(self, project: DbtProject) -> None:
        self.prepare(project)  # generated at every load: prepared at every load

    def prepare(self, project: DbtProject) -> None:
        parse_when_stale(project.project_dir, project.manifest_path, self.watched)


def dbt_project(settings: Settings | Context) -> DbtProject:
    """The build project of these settings, generated now, with an up-to-date manifest."""
    from medallion.pipeline import build_project

    ctx = Context.of(settings)
    built = build_project(ctx, predict=True)
    target = ctx.home / "dbt" / "dagster"  # absolute: the manifest is target/manifest.json
    project = DbtProject(project_dir=built.path, profiles_dir=built.path, target_path=target)
    # DbtProject's constructor takes no preparer: the record is rebuilt with ours
    project = replace(project, preparer=BuildProjectPreparer(watched_files(built)))
    project.prepare_if_dev()
    return project
