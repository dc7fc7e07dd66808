"""The dbt manifest that @dbt_assets reads when the definitions load: `dbt parse`, when stale.

It depends only on the files of transform/, so it lives in transform/target/dagster/ (ignored by
git) and is parsed again whenever a project file is newer than it. dbt runs in-process; parsing
reads no database, but the profile must render, so its variables get placeholders when unset.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from medallion.errors import MedallionError
from medallion.settings import DBT_PROJECT_DIR
from medallion.transform import profile_env

TARGET_DIR = DBT_PROJECT_DIR / "target" / "dagster"
MANIFEST = TARGET_DIR / "manifest.json"
_PROJECT_FOLDERS = ("models", "macros", "tests")
# Any DSN will do: parsing renders the profile but never connects.
_PLACEHOLDER_DSN = "host=localhost port=5432 dbname=parse_only"


def _newest_project_file(project_dir: Path) -> float:
    files = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in _PROJECT_FOLDERS:
        files += [p for p in (project_dir / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files if p.exists())


def ensure_manifest(project_dir: Path = DBT_PROJECT_DIR, manifest: Path = MANIFEST) -> Path:
    """The path of an up-to-date manifest.json, parsing the project first if needed."""
    if manifest.exists() and manifest.stat().st_mtime >= _newest_project_file(project_dir):
        return manifest
    from dbt.cli.main import dbtRunner  # ~1.5 s import: only when a parse is due

    manifest.parent.mkdir(parents=True, exist_ok=True)
    # Parse into a private folder, then move the manifest in: two processes loading the
    # definitions at once (the webserver and the daemon) never see a half-written file.
    work = Path(tempfile.mkdtemp(prefix="parse-", dir=manifest.parent))
    missing = {name: value for name, value in profile_env(_PLACEHOLDER_DSN).items() if not os.environ.get(name)}
    os.environ.update(missing)
    try:
        outcome = dbtRunner().invoke(["parse", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
                                      "--target-path", str(work), "--log-path", str(work), "--quiet"])
        if not outcome.success:
            raise MedallionError(f"dbt parse of {project_dir} failed: {outcome.exception or 'see dbt.log'}; "
                                 f"details in {work / 'dbt.log'}")
        os.replace(work / "manifest.json", manifest)
    finally:
        for name in missing:
            os.environ.pop(name, None)
    shutil.rmtree(work, ignore_errors=True)
    return manifest
