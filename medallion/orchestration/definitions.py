"""The Dagster code location: assets wired to their resources, jobs and schedules.

`defs` uses the settings of the environment, resolved as the `medallion` command resolves them
(the embedded cluster under MEDALLION_HOME, or MEDALLION_SOURCE_DSN / MEDALLION_WAREHOUSE_DSN,
and MEDALLION_CONFIG or ./medallion.toml of the folder Dagster runs in: `medallion ui` runs it
in the user's folder); build_definitions(settings) gives the same definitions for another
pipeline (tests). Loading reads the warehouse (bronze's captured tables) to lay out the asset
graph: reload the code location after an ingest that captured new tables.
"""

from __future__ import annotations

from dagster import Definitions, definitions

from medallion.context import Context
from medallion.errors import MedallionError
from medallion.orchestration.assets import build_assets
from medallion.orchestration.follow import medallion_follow
from medallion.orchestration.manifest import dbt_project
from medallion.orchestration.resources import MedallionResource, dbt_resource
from medallion.orchestration.schedules import frequent_ingest, ingest_job, nightly_run, run_job
from medallion.settings import Settings, load_settings


class DefinitionsError(MedallionError):
    """The definitions could not be laid out: the message names the project file and the cause."""


def build_definitions(settings: Settings | Context | None = None) -> Definitions:
    ctx = Context.of(settings or load_settings())  # resolved once, for the graph and every run
    try:
        project = dbt_project(ctx)
        assets = build_assets(project)
    except Exception as exc:  # one line naming the project, on the page and from `medallion ui`
        where = ctx.config_path or "no medallion.toml (the default selection)"
        raise DefinitionsError(f"the Dagster definitions of {where} did not load: {exc}") from exc
    return Definitions(
        assets=assets,
        jobs=[run_job, ingest_job, medallion_follow],
        schedules=[nightly_run, frequent_ingest],
        resources={"medallion": MedallionResource(ctx), "dbt": dbt_resource(project)},
    )


@definitions
def defs() -> Definitions:
    """Loaded lazily, when Dagster loads the code location (not when this module is imported)."""
    return build_definitions()
