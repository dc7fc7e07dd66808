"""The Dagster code location: assets wired to their resources, jobs and schedules.

`defs` uses the settings of the environment, as the `medallion` command does (the embedded
cluster under MEDALLION_HOME, or MEDALLION_SOURCE_DSN / MEDALLION_WAREHOUSE_DSN);
build_definitions(settings) gives the same definitions for another pipeline (tests).
"""

from __future__ import annotations

from dagster import Definitions

from medallion.orchestration.assets import bronze, dbt_models
from medallion.orchestration.resources import MedallionResource, dbt_resource
from medallion.orchestration.schedules import frequent_ingest, ingest_job, nightly_run, run_job
from medallion.settings import Settings


def build_definitions(settings: Settings | None = None) -> Definitions:
    medallion = MedallionResource.from_settings(settings) if settings else MedallionResource.from_environment()
    return Definitions(
        assets=[bronze, dbt_models],
        jobs=[run_job, ingest_job],
        schedules=[nightly_run, frequent_ingest],
        resources={"medallion": medallion, "dbt": dbt_resource()},
    )


defs = build_definitions()
