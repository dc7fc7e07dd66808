"""Dagster: the code location loads as `dagster` finds it, and the nightly job materialises every
asset (bronze ingest, then the dbt models with their tests as asset checks) on a private pipeline."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, job, op

from medallion import pipeline
from medallion.orchestration.definitions import build_definitions
from medallion.settings import REPO_ROOT, Settings, load_settings
from support import environment, execute, query


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
    # Dagster runs in the user's folder, with the project file the command resolved (not the repository's)
    assert command.cwd == Path.cwd()
    config = tmp_path / "medallion.toml"
    command = dagster_dev(Settings(home=tmp_path, source_dsn=None, warehouse_dsn=None, slot="s1", pagila_dir=None,
                                   config_path=config), port=3999)
    assert command.env["MEDALLION_CONFIG"] == str(config)


# A user's own project: a schema `app` whose table names need quoting (a space, non-ASCII, one
# long enough that bronze and silver shorten it), and a dbt project of the user's with a mart
# whose alias has a space. Nothing here is Pagila.
APP_SCHEMA = """
create schema app;
create table app."Order Line" ("Line ID" integer primary key, "Qty" integer not null, note text);
create table app."Kunde ü" (id integer primary key, "Name" text);
create table app."a table name long enough that every derived name must be cut short" (id integer primary key);
insert into app."Order Line" values (1, 2, 'first'), (2, 5, null);
insert into app."Kunde ü" values (1, 'Zoë');
insert into app."a table name long enough that every derived name must be cut short" values (7);
"""


def _user_project(folder: Path) -> Path:
    """medallion.toml and a dbt project of the user's own, in a folder that is not the repository."""
    from medallion.naming import model_name

    line_model = model_name("app__Order Line", set())  # the current-state model of app."Order Line"
    (folder / "marts" / "models").mkdir(parents=True)
    (folder / "marts" / "dbt_project.yml").write_text(
        'name: app_marts\nversion: "0.1.0"\nconfig-version: 2\nmodel-paths: ["models"]\n'
        "models:\n  app_marts:\n    +schema: gold\n", encoding="utf-8")
    (folder / "marts" / "models" / "order_totals.sql").write_text(
        "{{ config(materialized='table', alias='Order Totals') }}\n"
        f'select count(*) as "Lines", sum("Qty") as "Qty" from {{{{ ref(\'{line_model}\') }}}}\n', encoding="utf-8")
    (folder / "medallion.toml").write_text('[capture]\ninclude = ["app.*"]\n[transform]\ndbt_project = "marts"\n',
                                           encoding="utf-8")
    return folder


def _as_the_cli_finds_it(monkeypatch: pytest.MonkeyPatch, settings: Settings, folder: Path) -> None:
    """The environment of a user who runs `medallion ui` in their project folder (no MEDALLION_CONFIG)."""
    for name, value in environment(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MEDALLION_CONFIG", raising=False)
    monkeypatch.chdir(folder)


def test_a_users_project_with_quoted_names_materialises_every_asset(
        blank_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    execute(blank_settings.source_dsn or "", APP_SCHEMA)
    _as_the_cli_finds_it(monkeypatch, blank_settings, _user_project(tmp_path / "my project"))
    defs = build_definitions()  # from the environment and ./medallion.toml, as `medallion ui` loads it
    pipeline.prepare_source(load_settings())

    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", part) for key in keys for part in key.path), keys
    # one asset per captured table, per history and current table, and the user's mart
    assert len([k for k in keys if k.path[0] == "bronze"]) == 3
    assert len([k for k in keys if k.path[0] == "silver"]) == 6
    [mart] = [k for k in keys if k.path[0] == "gold"]
    # the real names stay readable: in the description and the metadata
    described = {graph.get(k).description or "" for k in keys}
    assert any('"Order Line"' in text for text in described), described
    assert "Order Totals" in str(graph.get(mart).metadata.get("relation")), graph.get(mart).metadata

    result = defs.resolve_job_def("medallion_run").execute_in_process(instance=DagsterInstance.ephemeral())
    assert result.success
    materialised = {m.asset_key for node in ("bronze_ingest", "silver_and_gold")
                    for m in result.asset_materializations_for_node(node)}
    assert materialised == set(keys)
    assert query(blank_settings.warehouse_dsn or "", 'select "Lines", "Qty" from gold."Order Totals"') == [(2, 7)]


def test_a_dagster_run_honours_the_plugin_and_the_query_role(
        blank_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The resource is the Context the CLI resolves: MEDALLION_PLUGIN and MEDALLION_QUERY_DSN included."""
    execute(blank_settings.source_dsn or "", 'create table "Item" (id integer primary key); insert into "Item" values (1)')
    reader = f"reader_{blank_settings.slot}"  # a login of this test's own (roles are the cluster's)
    execute(blank_settings.warehouse_dsn or "", f'create role "{reader}" login')
    _as_the_cli_finds_it(monkeypatch, blank_settings, tmp_path)
    monkeypatch.setenv("MEDALLION_PLUGIN", "wal2json")
    monkeypatch.setenv("MEDALLION_QUERY_DSN", (blank_settings.warehouse_dsn or "") + f" user={reader}")
    defs = build_definitions()
    pipeline.prepare_source(load_settings())
    assert defs.resources["medallion"].settings == load_settings()

    result = defs.resolve_job_def("medallion_ingest").execute_in_process(instance=DagsterInstance.ephemeral())
    assert result.success
    assert query(blank_settings.source_dsn or "", "select plugin from pg_replication_slots where slot_name = %s",
                 [blank_settings.slot]) == [("wal2json",)]

    @op(required_resource_keys={"medallion"})
    def who(context):  # an op downstream of gold asks as analysts do: medallion query's role
        return context.resources.medallion.query("select current_user").rows[0][0]

    @job
    def ask():
        who()

    try:
        asked = ask.execute_in_process(resources={"medallion": defs.resources["medallion"]},
                                       instance=DagsterInstance.ephemeral())
        assert asked.output_for_node("who") == reader
    finally:
        execute(blank_settings.warehouse_dsn or "", f'drop role "{reader}"')


LOCATION_STATUS = """{ workspaceOrError { ... on Workspace { locationEntries { loadStatus
    locationOrLoadError { __typename ... on PythonError { message causes { message } } } } } } }"""


def _location(port: int) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": LOCATION_STATUS}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["data"]["workspaceOrError"]["locationEntries"][0]


def test_ui_shows_a_definitions_error_and_stops_on_one_sigterm(blank_settings: Settings, tmp_path: Path) -> None:
    """On a user's project whose dbt does not parse, `medallion ui` prints the error and the page
    shows it; one SIGTERM ends it (dagster dev underneath, children included) within seconds."""
    execute(blank_settings.source_dsn or "", 'create schema app; create table app."Order Line" ("Line ID" integer primary key)')
    folder = _user_project(tmp_path / "my project")
    (folder / "marts" / "models" / "broken.sql").write_text("select * from {{ ref('no_such_model') }}\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = environment(blank_settings)
    env.pop("MEDALLION_CONFIG", None)  # ./medallion.toml, as the command finds it
    log = tmp_path / "ui.log"
    with log.open("w") as output:
        ui = subprocess.Popen([sys.executable, "-m", "medallion.cli", "ui", "--port", str(port)], env=env, cwd=folder,
                              stdout=output, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        location: dict = {}
        while time.monotonic() < deadline:  # up, and done loading the code location
            try:
                location = _location(port)
                if location["loadStatus"] != "LOADING":
                    break
            except (OSError, KeyError, IndexError, TypeError, ValueError):
                assert ui.poll() is None, log.read_text()
            time.sleep(1)
        else:
            raise AssertionError(f"the Dagster UI did not load in 180 s: {log.read_text()}")
        error = location["locationOrLoadError"]
        shown = " ".join([error.get("message", "")] + [cause["message"] for cause in error.get("causes") or []])
        assert error["__typename"] == "PythonError" and "did not load" in shown and "no_such_model" in shown, error
        printed = [line for line in log.read_text().splitlines() if line.startswith("warning: ")]
        assert printed and str(folder / "medallion.toml") in printed[0] and "no_such_model" in printed[0], printed

        started = time.monotonic()
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=15)
        took = time.monotonic() - started
        assert took < 6, f"{took:.1f} s"
    finally:
        if ui.poll() is None:  # a failed assertion: stop it as a user would, then for sure
            ui.send_signal(signal.SIGTERM)
            try:
                ui.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(ui.pid, signal.SIGKILL)
    with pytest.raises(OSError):  # the webserver is gone with it, not left behind
        urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
