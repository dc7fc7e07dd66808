"""The build project as dagster-dbt's DbtProject, and its preparer: `dbt parse` when stale.

The build project is generated from bronze's record of the captured tables (see
medallion/silver/project.py); before the first ingest, from the selection as the source's
catalog resolves it now, so the asset graph shows every table that will be captured. Because it
is generated at every load, it is prepared at every load (dagster-dbt's own preparer runs only
under `dagster dev`, and as a dbt subprocess): in process, only when a file changed, into a
private folder first so that two processes loading at once (webserver and daemon) never read a
half-written manifest. Parsing reads no database, but the profile must render, so its variables
get placeholders when unset.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from dagster_dbt import DbtProject
from dagster_dbt.dbt_project import DbtProjectPreparer

from medallion.errors import MedallionError
from medallion.settings import Settings
from medallion.transform import profile_env

# Any DSN will do: parsing renders the profile but never connects.
_PLACEHOLDER_DSN = "host=localhost port=5432 dbname=parse_only"


def _newest_file(folders: list[Path]) -> float:
    files = [p for folder in folders if folder.exists() for p in (folder.rglob("*") if folder.is_dir() else [folder])
             if p.is_file() and "target" not in p.parts and "logs" not in p.parts]
    return max((p.stat().st_mtime for p in files), default=0.0)


class ParseWhenStale(DbtProjectPreparer):
    """`dbt parse` in process when the manifest is older than a file of the project (or the
    project's own dbt, linked in as a package)."""

    def __init__(self, watched: list[Path]) -> None:
        self.watched = watched

    def prepare(self, project: DbtProject) -> None:
        manifest = project.manifest_path
        if manifest.exists() and manifest.stat().st_mtime >= _newest_file(self.watched):
            return
        from dbt.cli.main import dbtRunner  # ~1.5 s import: only when a parse is due

        manifest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="parse-", dir=manifest.parent))
        missing = {name: value for name, value in profile_env(_PLACEHOLDER_DSN).items() if not os.environ.get(name)}
        os.environ.update(missing)
        try:
            outcome = dbtRunner().invoke(["parse", "--project-dir", str(project.project_dir), "--profiles-dir",
                                          str(project.profiles_dir), "--target-path", str(work), "--log-path",
                                          str(work), "--quiet"])
            if not outcome.success:
                raise MedallionError(f"dbt parse of {project.project_dir} failed: "
                                     f"{outcome.exception or 'see dbt.log'}; details in {work / 'dbt.log'}")
            os.replace(work / "manifest.json", manifest)
        finally:
            for name in missing:
                os.environ.pop(name, None)
        shutil.rmtree(work, ignore_errors=True)


def dbt_project(settings: Settings) -> DbtProject:
    """The build project of these settings, generated now, with an up-to-date manifest."""
    from medallion.pipeline import build_project

    built = build_project(settings, predict=True)
    watched = [built.path / "models", built.path / "dbt_project.yml"] + ([built.dbt_project] if built.dbt_project else [])
    project = DbtProject(project_dir=built.path, profiles_dir=built.path,
                         target_path=settings.home / "dbt" / "dagster")  # absolute: outside the project
    ParseWhenStale(watched).prepare(project)  # not project.prepare_if_dev(): that one acts under `dagster dev` only
    return project
