"""The Dagster code location: assets wired to their resources, jobs and schedules.

`defs` uses the settings of the environment, as the `medallion` command does (the embedded
cluster under MEDALLION_HOME, or MEDALLION_SOURCE_DSN / MEDALLION_WAREHOUSE_DSN, and
medallion.toml); build_definitions(settings) gives the same definitions for another pipeline
(tests). Loading reads the warehouse (bronze's captured tables) to lay out the asset graph:
reload the code location after an ingest that captured new tables.
"""

from __future__ import annotations

from dagster import Definitions, definitions

from medallion.orchestration.assets import build_assets
from medallion.orchestration.follow import medallion_follow
from medallion.orchestration.manifest import ensure_manifest
from medallion.orchestration.resources import MedallionResource, dbt_resource
from medallion.orchestration.schedules import frequent_ingest, ingest_job, nightly_run, run_job
from medallion.settings import Settings, load_settings


def build_definitions(settings: Settings | None = None) -> Definitions:
    medallion = MedallionResource.from_settings(settings) if settings else MedallionResource.from_environment()
    project_dir, manifest = ensure_manifest(settings or load_settings())
    return Definitions(
        assets=build_assets(manifest),
        jobs=[run_job, ingest_job, medallion_follow],
        schedules=[nightly_run, frequent_ingest],
        resources={"medallion": medallion, "dbt": dbt_resource(project_dir)},
    )


@definitions
def defs() -> Definitions:
    """Loaded lazily, when Dagster loads the code location (not when this module is imported)."""
    return build_definitions()
