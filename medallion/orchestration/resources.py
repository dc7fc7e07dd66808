"""Resources: the pipeline's Context, resolved as the `medallion` command resolves it, and the dbt CLI.

The settings are not restated field by field as Dagster config: the resource holds the Context
of `load_settings()` of the environment the code location runs in (which `medallion ui` hands
to `dagster dev`), built as the CLI builds it, so every field the command honours
(MEDALLION_PLUGIN, MEDALLION_QUERY_DSN, the analyst role, the project file, ...) reaches a
Dagster run too, and no DSN shows in the UI's config.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dagster_dbt import DbtCliResource, DbtProject

from medallion import dbt_run
from medallion.context import Context
from medallion.settings import Settings
from medallion.transform import dbt_profile

if TYPE_CHECKING:
    from medallion.query import QueryResult


@dataclass(frozen=True)
class MedallionResource:
    """Where the pipeline runs: the resolved Context (without DSNs, the embedded cluster under
    its home, which must be up: `medallion up`). Assets ask for it as ResourceParam."""

    context: Context

    @property
    def settings(self) -> Settings:
        """The environment as read, before resolution."""
        return self.context.settings

    @contextmanager
    def dbt_profile(self) -> Iterator[None]:
        """The build project's profiles.yml reads MEDALLION_DBT_*: set them for the dbt subprocess
        (it inherits os.environ when it starts), and restore them afterwards."""
        with dbt_profile(self.context.endpoints.warehouse):
            yield

    def query(self, sql_text: str, params: dict[str, object] | None = None,
              known_at: str | None = None) -> QueryResult:
        """Time travel for an asset or op downstream of gold, as `medallion query` runs it: read-only,
        as the query role (MEDALLION_QUERY_DSN, else the warehouse as MEDALLION_ANALYST_ROLE)."""
        from medallion import pipeline

        return pipeline.query(self.context, sql_text, params, known_at)


def dbt_resource(project: DbtProject) -> DbtCliResource:
    """dagster-dbt's CLI resource on medallion-dbt (dbt with the gold planner: medallion.dbt_run)."""
    return DbtCliResource(project_dir=project, dbt_executable=dbt_run.executable())
