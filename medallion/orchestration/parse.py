"""`dbt parse` of the build project when stale: the manifest that Dagster's assets and Airflow's
cosmos task groups are laid out from. Free of Dagster and Airflow imports, so both use it.

The build project is generated from bronze's record of the captured tables (see
medallion/silver/project.py); before the first ingest, from the selection as the source's
catalog resolves it now, so the graph shows every table that will be captured. It is parsed in
process, only when a file changed, into a private folder first so that two processes loading at
once (a webserver and a daemon, a DAG processor and a worker) never read a half-written manifest.
Parsing reads no database, but the profile must render, so its variables get placeholders when unset.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from medallion.context import Context
from medallion.errors import MedallionError
from medallion.settings import Settings
from medallion.silver.project import BuildProject
from medallion.transform import profile_env

# Any DSN will do: parsing renders the profile but never connects.
_PLACEHOLDER_DSN = "host=localhost port=5432 dbname=parse_only"
PROFILE_NAME = "medallion"  # the build project's profiles.yml: profile and target
TARGET_NAME = "warehouse"


@dataclass(frozen=True)
class ParsedProject:
    path: Path  # the build project folder (dbt_project.yml, profiles.yml)
    manifest: Path
    watched: tuple[Path, ...]  # what a change to makes the manifest stale


def fingerprint(watched: tuple[Path, ...]) -> str:
    """Every watched file's path, size and mtime, hashed: it changes when a file is added, changed
    or removed (a removed model leaves no newer file behind, so the newest mtime would not do)."""
    files = sorted(p for folder in watched if folder.exists() for p in (folder.rglob("*") if folder.is_dir() else [folder])
                   if p.is_file() and "target" not in p.parts and "logs" not in p.parts)
    listing = "\n".join(f"{p}\t{p.stat().st_size}\t{p.stat().st_mtime_ns}" for p in files)
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def parse_when_stale(project_dir: Path, manifest: Path, watched: tuple[Path, ...]) -> None:
    """`dbt parse` of project_dir into manifest, unless it was parsed from these very files
    (the fingerprint kept beside the manifest)."""
    stamp = manifest.with_name(manifest.name + ".fingerprint")
    current = fingerprint(watched)
    if manifest.exists() and stamp.exists() and stamp.read_text() == current:
        return
    from medallion import dbt_run

    manifest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="parse-", dir=manifest.parent))
    missing = {name: value for name, value in profile_env(_PLACEHOLDER_DSN).items() if not os.environ.get(name)}
    os.environ.update(missing)
    try:
        outcome = dbt_run.invoke(["parse", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
                                      "--target-path", str(work), "--log-path", str(work), "--quiet"])
        if not outcome.success:
            cause = " ".join(str(outcome.exception).split()) if outcome.exception else "see dbt.log"  # one line
            raise MedallionError(f"dbt parse of {project_dir} failed: {cause}; details in {work / 'dbt.log'}")
        os.replace(work / "manifest.json", manifest)
        stamp.write_text(current)
    finally:
        for name in missing:
            os.environ.pop(name, None)
    shutil.rmtree(work, ignore_errors=True)


def watched_files(built: BuildProject) -> tuple[Path, ...]:
    """What a change to makes the build project's manifest stale: its models, its dbt_project.yml
    and the project's own dbt."""
    return (built.models, built.path / "dbt_project.yml") + ((built.dbt_project,) if built.dbt_project else ())


def parsed_build_project(settings: Settings | Context, target: Path) -> ParsedProject:
    """The build project of these settings, generated now, with an up-to-date manifest in target."""
    from medallion.pipeline import build_project

    built = build_project(settings, predict=True)
    parsed = ParsedProject(built.path, target / "manifest.json", watched_files(built))
    parse_when_stale(parsed.path, parsed.manifest, parsed.watched)
    return parsed
