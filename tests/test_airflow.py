"""Airflow beside Dagster: the DAG module loads for a user's project (quoted and spaced names, a
mart of the user's) and one run of the nightly DAG (`dag.test()`) materialises everything, with a
task per dbt model and its tests as tasks (astronomer-cosmos).

Airflow runs in a subprocess with an AIRFLOW_HOME of the test's own: importing Airflow configures
logging and settings process-wide, which must not leak into the other tests of the worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medallion import pipeline
from medallion.settings import Settings, load_settings
from support import environment, execute, query
from test_orchestration import APP_SCHEMA, _user_project

# one table of test_orchestration's schema: each dbt task costs seconds, and the point is the DAG
ORDER_LINE = "\n".join(line for line in APP_SCHEMA.splitlines() if "Kunde" not in line and "long enough" not in line)

pytest.importorskip("cosmos", reason="the airflow extra: pip install -c constraints.txt -c constraints-airflow.txt "
                                     "-e '.[airflow]'")

pytestmark = pytest.mark.file_seconds(50)

# the DAG file a user puts in Airflow's DAGs folder (docs/orchestration.md)
DAG_FILE = """from medallion.orchestration.airflow_dags import build_dags

medallion_nightly, medallion_ingest = build_dags()
"""

RUN_ONCE = """
import json, runpy, sys
dags = runpy.run_path(sys.argv[1])
nightly, frequent = dags["medallion_nightly"], dags["medallion_ingest"]
run = nightly.test()
print("RESULT " + json.dumps({
    "state": str(run.state),
    "tasks": sorted(t.task_id for t in nightly.tasks),
    "ingest": [t.task_id for t in frequent.tasks],
    "schedules": [str(nightly.schedule), str(frequent.schedule)],
    "failed": sorted(ti.task_id for ti in run.get_task_instances() if str(ti.state) != "success"),
}))
"""


def test_the_nightly_dag_runs_once_on_a_users_project(blank_settings: Settings, tmp_path: Path) -> None:
    execute(blank_settings.source_dsn or "", ORDER_LINE)
    folder = _user_project(tmp_path / "my project")
    env = dict(environment(blank_settings), AIRFLOW_HOME=str(tmp_path / "airflow"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__UNIT_TEST_MODE="True")
    env.pop("MEDALLION_CONFIG", None)  # found as the command finds it: ./medallion.toml
    pipeline.prepare_source(load_settings(dict(env, MEDALLION_CONFIG=str(folder / "medallion.toml"))))
    dag_file = tmp_path / "airflow" / "dags" / "medallion_dags.py"
    dag_file.parent.mkdir(parents=True)
    dag_file.write_text(DAG_FILE, encoding="utf-8")
    migrated = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, cwd=folder,
                              capture_output=True, text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]

    done = subprocess.run([sys.executable, "-c", RUN_ONCE, str(dag_file)], env=env, cwd=folder, capture_output=True, text=True,
                          timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-5000:] + done.stderr[-5000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["failed"] == [] and result["state"] == "success", result

    tasks = result["tasks"]
    assert tasks[0] == "grant_readers" and "ingest" in tasks and result["ingest"] == ["ingest"]
    # a task per model (history, current table, the user's mart) and the model's tests as a task after it
    runs = [t for t in tasks if t.startswith("silver_and_gold.") and t.endswith(("_run", ".run"))]
    tests = [t for t in tasks if t.startswith("silver_and_gold.") and t.endswith(("_test", ".test"))]
    assert len(runs) == 3 and tests, tasks
    wh = blank_settings.warehouse_dsn or ""
    assert query(wh, 'select "Lines", "Qty" from gold."Order Totals"') == [(2, 7)]
    assert query(wh, 'select count(*) from silver."app__Order Line_hist"') == [(2,)]
