"""The dbt manifest that @dbt_assets reads when the definitions load: `dbt parse` of the build
project, when stale.

The build project is generated from bronze's record of the captured tables (see
medallion/silver/project.py); before the first ingest, from the selection as the source's
catalog resolves it now, so the asset graph shows every table that will be captured. Parsing
reads no database, but the profile must render, so its variables get placeholders when unset.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from medallion.errors import MedallionError
from medallion.settings import Settings
from medallion.transform import profile_env

# Any DSN will do: parsing renders the profile but never connects.
_PLACEHOLDER_DSN = "host=localhost port=5432 dbname=parse_only"


def _newest_file(folders: list[Path]) -> float:
    files = [p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()
             and "target" not in p.parts and "logs" not in p.parts]
    return max((p.stat().st_mtime for p in files), default=0.0)


def ensure_manifest(settings: Settings) -> tuple[Path, Path]:
    """(build project folder, path of its up-to-date manifest.json), generating and parsing as needed."""
    from medallion.pipeline import build_project

    project = build_project(settings, predict=True)
    manifest = settings.home / "dbt" / "dagster" / "manifest.json"
    folders = [project.path / "models", project.path / "dbt_project.yml"]
    if project.dbt_project:
        folders.append(project.dbt_project)
    if manifest.exists() and manifest.stat().st_mtime >= max(_newest_file(folders),
                                                              (project.path / "dbt_project.yml").stat().st_mtime):
        return project.path, manifest
    from dbt.cli.main import dbtRunner  # ~1.5 s import: only when a parse is due

    manifest.parent.mkdir(parents=True, exist_ok=True)
    # Parse into a private folder, then move the manifest in: two processes loading the
    # definitions at once (the webserver and the daemon) never see a half-written file.
    work = Path(tempfile.mkdtemp(prefix="parse-", dir=manifest.parent))
    missing = {name: value for name, value in profile_env(_PLACEHOLDER_DSN).items() if not os.environ.get(name)}
    os.environ.update(missing)
    try:
        outcome = dbtRunner().invoke(["parse", "--project-dir", str(project.path), "--profiles-dir",
                                      str(project.path), "--target-path", str(work), "--log-path", str(work),
                                      "--quiet"])
        if not outcome.success:
            raise MedallionError(f"dbt parse of {project.path} failed: {outcome.exception or 'see dbt.log'}; "
                                 f"details in {work / 'dbt.log'}")
        os.replace(work / "manifest.json", manifest)
    finally:
        for name in missing:
            os.environ.pop(name, None)
    shutil.rmtree(work, ignore_errors=True)
    return project.path, manifest
