"""Where dbt starts: the one place, for every caller.

In process (`invoke`): `medallion build` (transform.py), the parse that lays out Dagster's and
Airflow's graphs (orchestration/parse.py) and the benchmark. As a program (`main`, installed as
`medallion-dbt`): what dagster-dbt and astronomer-cosmos start. Either way the gold planner is
reachable from dbt's Jinja first (gold/jinja.py), so a plain mart is planned the same everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult


def invoke(args: list[str]) -> dbtRunnerResult:
    """One dbt command in this process (dbtRunner: no subprocess, no dbt on PATH)."""
    from dbt.cli.main import dbtRunner  # ~1.5 s import: only when dbt runs

    from medallion.dbt_schemas import keep_schemas_on_disk
    from medallion.gold.jinja import patch_dbt_context

    patch_dbt_context()  # the gold_mart materialization reads its SQL with sqlglot
    keep_schemas_on_disk()
    return dbtRunner().invoke(args)


def main() -> None:
    """`medallion-dbt`: dbt's own command line, with the planner reachable from Jinja, for the
    tools that start dbt as a program (dagster-dbt, astronomer-cosmos)."""
    from medallion.dbt_schemas import keep_schemas_on_disk
    from medallion.gold.jinja import patch_dbt_context

    patch_dbt_context()
    keep_schemas_on_disk()
    from dbt.cli.main import cli

    cli()


def executable() -> str:
    """`medallion-dbt` beside this interpreter (the venv's), which need not be on PATH: the program
    that orchestrators start."""
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "medallion-dbt"
    return str(beside) if beside.exists() else (shutil.which("medallion-dbt") or "medallion-dbt")
