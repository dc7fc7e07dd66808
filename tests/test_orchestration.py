"""Dagster: the code location loads as `dagster` finds it, and the nightly job materialises every
asset (bronze ingest, then the dbt models with their tests as asset checks) on a private pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DagsterInstance

from medallion.orchestration.definitions import build_definitions
from medallion.settings import REPO_ROOT, Settings
from support import query


def test_definitions_validate_from_the_repository_root(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """Before the first ingest the graph comes from the selection (the source's catalog)."""
    env = dict(cli_env, DAGSTER_HOME=str(tmp_path))
    done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful for code location medallion" in done.stdout + done.stderr


def test_layers_jobs_and_schedules(settings: Settings) -> None:
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    groups = {key.path[0]: graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert set(groups.values()) == {"bronze", "silver", "gold"}
    assert all(layer == group for layer, group in groups.items())
    assert AssetKey(["gold", "vw_monthly_revenue"]) in graph.get_all_asset_keys()
    # one bronze asset per captured table, a history for each (Pagila's 15 tables all have keys)
    assert len([k for k, g in groups.items() if g == "bronze"]) == 1
    keys = graph.get_all_asset_keys()
    assert len([k for k in keys if k.path[0] == "bronze"]) == 15
    assert len([k for k in keys if k.path[0] == "silver" and k.path[1].endswith("_hist")]) == 15
    # the bronze asset feeds the dbt sources: silver's history reads bronze's table
    assert AssetKey(["bronze", "br_customer_cdc"]) in graph.get(AssetKey(["silver", "dim_customer_hist"])).parent_keys
    assert any(check.asset_key == AssetKey(["silver", "dim_customer"]) for check in graph.asset_check_keys)
    schedules = {s.name: s for s in defs.schedules}
    assert schedules["nightly_run"].job_name == "medallion_run"
    assert schedules["frequent_ingest"].job_name == "medallion_ingest"
    # the long-running follower (medallion run --follow), launched by hand and never scheduled
    follow = defs.resolve_job_def("medallion_follow")
    assert [node.name for node in follow.nodes] == ["follow_source"]
    assert "medallion" in follow.required_resource_keys


def test_nightly_job_materialises_every_asset(settings: Settings) -> None:
    defs = build_definitions(settings)
    job = defs.resolve_job_def("medallion_run")
    result = job.execute_in_process(instance=DagsterInstance.ephemeral())
    assert result.success

    materialised = {m.asset_key for m in result.asset_materializations_for_node("bronze_ingest")}
    materialised |= {m.asset_key for m in result.asset_materializations_for_node("silver_and_gold")}
    assert materialised == set(defs.resolve_asset_graph().get_all_asset_keys())
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)

    wh = settings.warehouse_dsn or ""
    assert query(wh, "select count(*) from bronze.br_rental_cdc")[0][0] == 16044
    assert query(wh, "select count(*) from silver.dim_customer_hist")[0][0] == 599
    assert query(wh, "select count(*) from gold.vw_monthly_revenue")[0][0] > 0


def test_ui_runs_dagster_dev_on_the_pipeline(tmp_path: Path) -> None:
    from medallion.orchestration.ui import DEFINITIONS_MODULE, dagster_dev

    settings = Settings(home=tmp_path, source_dsn=None, warehouse_dsn=None, slot="s1", pagila_dir=None)
    command = dagster_dev(settings, port=3999)
    assert Path(command.argv[0]).is_file() and command.argv[1:4] == ["dev", "-m", DEFINITIONS_MODULE]
    assert command.argv[-2:] == ["-p", "3999"] and command.url == "http://127.0.0.1:3999"
    assert command.env["DAGSTER_HOME"] == str(tmp_path / "dagster") and command.env["MEDALLION_HOME"] == str(tmp_path)
    assert "enabled: false" in (tmp_path / "dagster" / "dagster.yaml").read_text()
