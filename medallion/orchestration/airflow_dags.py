"""Airflow beside Dagster: the nightly run and the frequent ingest as DAGs (pip install -e '.[airflow]').

- `medallion_nightly` (02:00 UTC): `ingest` (bronze up to date), then the build project rendered
  by astronomer-cosmos as one task group, `silver_and_gold`: a task per dbt model and its tests as
  tasks after it (TestBehavior.AFTER_EACH, over whole tables: the nightly full test), then
  `grant_readers` (analysts read what dbt made).
- `medallion_ingest` (every 5 minutes): `ingest` alone, so the slot never pins WAL for long.

The settings are the `medallion` command's (load_settings: MEDALLION_HOME or the DSNs,
MEDALLION_CONFIG or ./medallion.toml of the folder the DAG processor runs in), resolved when the
DAG file is parsed, as Dagster's definitions are. Put a two-line file in the DAGs folder:

    from medallion.orchestration.airflow_dags import build_dags
    medallion_nightly, medallion_ingest = build_dags()

Each task calls the library or dbt; no logic lives here. Both schedules start paused (Airflow's
default for new DAGs), without catch-up.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from medallion import dbt_run
from medallion.context import Context
from medallion.orchestration.parse import PROFILE_NAME, TARGET_NAME, parsed_build_project
from medallion.settings import Settings, load_settings
from medallion.transform import profile_env

START = datetime(2026, 1, 1)
FULL_TESTS = {"medallion_full_tests": True}


def ingest() -> str:
    """Bronze: the source's committed changes since the last ingest (the first one snapshots)."""
    from medallion import pipeline

    report = pipeline.ingest(load_settings(), notify=print)
    return f"{report.snapshot_rows} snapshot rows, {report.changes} changes in {len(report.batches)} batches"


def grant_readers() -> list[str]:
    from medallion import pipeline

    notes = pipeline.grant_readers(load_settings())
    for line in notes:
        print(f"warning: {line}")
    return notes


def silver_and_gold(settings: Settings | Context) -> DbtTaskGroup:
    """The build project as cosmos tasks, laid out from its manifest (parsed when stale)."""
    ctx = Context.of(settings)
    parsed = parsed_build_project(ctx, ctx.home / "dbt" / "airflow")
    # profiles.yml reads MEDALLION_DBT_*: the warehouse of these settings, unless the worker's
    # environment gives them (a password then stays out of the DAG's rendered fields)
    env = {name: value for name, value in profile_env(ctx.endpoints.warehouse).items()
           if not os.environ.get(name)}
    return DbtTaskGroup(
        group_id="silver_and_gold",
        project_config=ProjectConfig(dbt_project_path=parsed.path, manifest_path=parsed.manifest,
                                     project_name="medallion_build", install_dbt_deps=False),
        profile_config=ProfileConfig(profile_name=PROFILE_NAME, target_name=TARGET_NAME,
                                     profiles_yml_filepath=parsed.path / "profiles.yml"),
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER,
                                         dbt_executable_path=Path(dbt_run.executable())),
        # dbt in the task's process (dbtRunner), not a subprocess per task: seconds saved per model
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.AFTER_EACH,
                                   emit_datasets=False),
        operator_args={"vars": FULL_TESTS, "env": env, "append_env": True, "install_deps": False},
    )


def build_dags(settings: Settings | None = None) -> tuple[DAG, DAG]:
    """(nightly, ingest) for these settings (default: the environment's, as the command resolves them)."""
    settings = settings or load_settings()
    with DAG("medallion_nightly", schedule="0 2 * * *", start_date=START, catchup=False, tags=["medallion"],
             description="Nightly: ingest, then silver and gold (one task per dbt model, tests after each)") as nightly:
        first = PythonOperator(task_id="ingest", python_callable=ingest)
        models = silver_and_gold(settings)
        last = PythonOperator(task_id="grant_readers", python_callable=grant_readers)
        first >> models >> last
    with DAG("medallion_ingest", schedule="*/5 * * * *", start_date=START, catchup=False, max_active_runs=1,
             tags=["medallion"], description="Every 5 minutes: capture the source's new changes into bronze") as frequent:
        PythonOperator(task_id="ingest", python_callable=ingest)
    return nightly, frequent
