"""The engines that build silver and gold: PostgreSQL (the warehouse) and Spark (the Iceberg lake).

Each engine is one object that owns what differs between them: where its dbt project and dbt's
files live, its profile, what its generated project adds, whether it may run the statements
the last dbt build stored (stored_build.py), what surrounds a build (locks, the analysts' reads)
and how `medallion query` answers on it. Every other module asks the engine, never its name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medallion.errors import MedallionError

if TYPE_CHECKING:
    from medallion.context import Context
    from medallion.query import QueryResult


class Engine:
    """PostgreSQL, the default: silver and gold in the warehouse, built by dbt-postgres."""

    name = "postgres"
    profiles_file = "profiles.yml"  # in medallion/dbt: copied into the build project as profiles.yml
    stored_steps = True  # an unchanged project runs the statements its last dbt build stored
    in_warehouse = True  # silver and gold are the warehouse's: renamed relations dropped, reads granted
    constraints = True  # histories have keys and no-overlap constraints (Spark's Iceberg has none)

    def work_dir(self, home: Path) -> Path:
        """dbt's target/ and logs/ (and the build project) of this engine under MEDALLION_HOME."""
        return home / "dbt"

    def project_path(self, home: Path) -> Path:
        """Where the build project of this engine lives (each has its own target/ and partial parse)."""
        return self.work_dir(home) / "project"

    def project_yml(self, base: dict[str, Any], project_name: str) -> dict[str, Any]:
        """The generated dbt_project.yml: the engine's own keys over the common ones."""
        return base

    def source_quoting(self) -> dict[str, Any]:
        """How bronze's sources are quoted: dbt-postgres quotes identifiers by default."""
        return {}

    @contextmanager
    def building(self, ctx: Context) -> Iterator[None]:
        """Around a whole build: medallion.locks' locks (no reset meanwhile; `run --follow`'s
        rounds wait for it, so its tests see one state of silver and gold)."""
        from medallion import locks

        with locks.building(ctx):
            yield

    @contextmanager
    def dbt_session(self, ctx: Context) -> Iterator[Path | None]:
        """What a dbt run on this engine needs around it; yields the profiles folder (None: the
        project's). PostgreSQL: profiles.yml's variables from the warehouse DSN."""
        from medallion.dbt_profile import dbt_profile

        with dbt_profile(ctx.endpoints.warehouse):
            yield None

    def query(self, ctx: Context, sql_text: str, params: dict[str, object] | None, known_at: str | None,
              strict: bool) -> QueryResult:
        from medallion.query import run_query

        return run_query(ctx, sql_text, params, known_at, strict)

    def explain(self, ctx: Context, sql_text: str, known_at: str | None) -> str:
        from medallion.query import explain_query

        return explain_query(ctx, sql_text, known_at)


class SparkEngine(Engine):
    """Spark: the same project built from the Iceberg lake (bronze exported by `export`) into
    Iceberg tables, by dbt-spark on an in-process session or a real cluster."""

    name = "spark"
    profiles_file = "profiles_spark.yml"
    stored_steps = False  # always dbt
    in_warehouse = False
    constraints = False  # the shape test (spark_valid_history) is Spark's guard

    def work_dir(self, home: Path) -> Path:
        return home / "dbt" / self.name

    def project_yml(self, base: dict[str, Any], project_name: str) -> dict[str, Any]:
        # names are kept as the source spells them (spaces, mixed case): quoted, as on PostgreSQL
        return {**base, "on-run-start": ["{{ medallion.spark_prepare_lake() }}"], "quoting": {"identifier": True},
                "models": {"+file_format": "iceberg", project_name: {"silver": {"+schema": "silver"}}}}

    def source_quoting(self) -> dict[str, Any]:
        return {"quoting": {"identifier": True}}  # Spark quotes nothing by default

    @contextmanager
    def building(self, ctx: Context) -> Iterator[None]:
        yield  # the warehouse's layers are not touched: nothing to lock

    @contextmanager
    def dbt_session(self, ctx: Context) -> Iterator[Path | None]:
        """The in-process SparkSession on the lake's catalog, or a real cluster's profiles.yml
        ([lake] spark_profiles_dir)."""
        from medallion.lake.dependencies import require
        from medallion.lake.target import lake_target

        require("dbt.adapters.spark")
        target = lake_target(ctx)
        if target.spark_profiles_dir is None:
            from medallion.spark.session import spark_session

            spark_session(target)
        yield target.spark_profiles_dir

    def query(self, ctx: Context, sql_text: str, params: dict[str, object] | None, known_at: str | None,
              strict: bool) -> QueryResult:
        from medallion.spark.query import run_spark_query

        if params:
            raise MedallionError("--param is for PostgreSQL: on Spark write the value into the statement")
        return run_spark_query(ctx, sql_text, known_at, strict)

    def explain(self, ctx: Context, sql_text: str, known_at: str | None) -> str:
        from medallion.spark.query import explain_spark_query

        return explain_spark_query(ctx, sql_text, known_at)


POSTGRES = Engine()
SPARK = SparkEngine()
ENGINES = {engine.name: engine for engine in (POSTGRES, SPARK)}


def engine_named(engine: str | Engine) -> Engine:
    """The engine of a name (--engine), or one error line naming the choices."""
    if isinstance(engine, Engine):
        return engine
    found = ENGINES.get(engine)
    if found is None:
        raise MedallionError(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    return found
