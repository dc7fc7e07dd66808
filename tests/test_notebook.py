"""notebooks/time_travel.ipynb runs headless against a private pipeline with a burst of history.

The test prepares the data (the notebook only reads): initial snapshot and build, a seeded burst
of source changes, then ingest and build again. The notebook runs in a fresh kernel of this
interpreter (nbclient), pointed at the test's databases by the two DSN variables.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from medallion import pipeline
from medallion.settings import REPO_ROOT, Settings
from pagila_example import api as example
from support import query

NOTEBOOK = REPO_ROOT / "notebooks" / "time_travel.ipynb"
settings_published: dict[str | None, object] = {}  # warehouse -> the revenue total at the first build


def _text(cell: nbformat.NotebookNode) -> str:
    """Everything a cell printed (stream and text/plain results)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _tagged(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    found = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(found) == 1, f"one cell tagged {tag} expected, found {len(found)}"
    return found[0]


def _rows(text: str) -> list[str]:
    """The data lines of a table printed by the notebook's show(): below the dashes, above the count."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("--")) + 1
    return [line for line in lines[start:] if line and not line.startswith("(") and not line.startswith("...")]


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


@pytest.fixture
def history(settings: Settings) -> Settings:
    """A warehouse whose history has a snapshot and, after it, a burst of customer and payment changes."""
    pipeline.ingest(settings)
    pipeline.build(settings)
    # what a report printed now would say: the notebook must reproduce it after the burst
    settings_published[settings.warehouse_dsn] = query(settings.warehouse_dsn or "",
                                                       "select sum(revenue) from gold.vw_monthly_revenue")[0][0]
    time.sleep(1)  # the burst's load comes strictly later than the first build's
    report = example.simulate(settings, seed=7, transactions=150, rate=None)
    assert report.kinds["customer_change"] and (report.kinds["rent"] or report.kinds["payment_delete"])
    pipeline.run(settings)
    return settings


def test_notebook_runs_and_as_of_outputs_differ(history: Settings, tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = dict(os.environ, MEDALLION_SOURCE_DSN=history.source_dsn or "",
               MEDALLION_WAREHOUSE_DSN=history.warehouse_dsn or "", MEDALLION_HOME=str(history.home),
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    # kernel "python3" is ipykernel's spec; jupyter_client starts it with this interpreter (the venv's).
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute(env=env)  # raises CellExecutionError on the first failing cell
    finally:
        nbformat.write(nb, tmp_path / NOTEBOOK.name)  # the executed notebook, to look at when this fails

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert "warehouse: MEDALLION_WAREHOUSE_DSN" in _text(nb.cells[1])

    history_rows = _rows(_text(_tagged(nb, "customer-history")))
    assert len(history_rows) >= 2, "the chosen customer has several versions"
    assert history_rows[-1].rstrip().endswith("infinity"), "the last version is open"

    then = _rows(_text(_tagged(nb, "customer-then")))
    now = _rows(_text(_tagged(nb, "customer-now")))
    assert len(then) == len(now) == 1
    assert then != now, "the customer changed after 'then': the two as-of rows differ"
    assert _rows(_text(_tagged(nb, "customers-changed"))), "some customers changed between then and now"

    mart_then = _text(_tagged(nb, "mart-then"))
    mart_now = _text(_tagged(nb, "mart-now"))
    assert _rows(mart_then) and _rows(mart_now)
    assert mart_then != mart_now
    assert _rows(_text(_tagged(nb, "mart-diff"))), "the burst changed the revenue of some store-month"

    plot = _tagged(nb, "plot")
    assert any("image/png" in o.get("data", {}) for o in plot.outputs), "the plot cell shows a figure"

    # the auditor's case: the figure as published (known at the first build), reproduced exactly
    auditor = _text(_tagged(nb, "auditor"))
    published = settings_published[history.warehouse_dsn]
    assert f"total revenue in the published report: {published}" in auditor
    now_total = query(history.warehouse_dsn or "", "select sum(revenue) from gold.vw_monthly_revenue")[0][0]
    assert now_total != published, "the burst corrected some revenue after the report"
