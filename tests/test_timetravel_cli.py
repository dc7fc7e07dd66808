"""`medallion query`: the command parses, calls the library, and prints table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from medallion.cli import cli
from medallion.settings import Settings
from medallion.source.cluster import EmbeddedCluster
from support import medallion
from timetravel_history import history_warehouse

AS_OF_MARCH = ("select customer_id, name, sys_start from hist.customer_hist "
               "for system_time as of '2026-03-01 00:00+00' order by customer_id")


@pytest.fixture(scope="module")
def env(cluster: EmbeddedCluster) -> Iterator[dict[str, str]]:
    with history_warehouse(cluster, "tt_cli") as settings:
        yield environment(settings)


def environment(settings: Settings) -> dict[str, str]:
    return {"MEDALLION_SOURCE_DSN": settings.source_dsn or "", "MEDALLION_WAREHOUSE_DSN": settings.warehouse_dsn or "",
            "MEDALLION_HOME": str(settings.home)}


def invoke(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["query", *args], env=env, input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_help_teaches_every_form_with_examples() -> None:
    result = CliRunner().invoke(cli, ["query", "--help"])
    assert result.exit_code == 0
    for form in ("AS OF", "FROM a TO b", "BETWEEN a AND b", "CONTAINED IN (a, b)", "ALL"):
        assert f"FOR SYSTEM_TIME {form}" in result.stdout
    for example in ("for system_time as of '", "for system_time all", "for system_time from now()",
                    "for system_time between '", "for system_time contained in (", "--format csv", "--explain"):
        assert example in result.stdout, example


def test_csv_output_parses(env: dict[str, str]) -> None:
    code, stdout, _ = invoke(env, "--format", "csv", AS_OF_MARCH)
    assert code == 0
    assert list(csv.reader(io.StringIO(stdout))) == [
        ["customer_id", "name", "sys_start"],
        ["1", "Anna", "2026-03-01T00:00:00+00:00"],
        ["2", "Bob", "2026-02-01T00:00:00+00:00"],
        ["3", "Cyrus", "2026-03-01T00:00:00+00:00"],
    ]


def test_json_output_parses(env: dict[str, str]) -> None:
    code, stdout, stderr = invoke(env, "-f", "json", "-p", "at=2026-03-01 00:00+00",
                             "select customer_id, name, sys_end from hist.customer_hist "
                             "for system_time as of %(at)s order by customer_id")
    assert code == 0, stderr
    assert json.loads(stdout) == [
        {"customer_id": 1, "name": "Anna", "sys_end": "infinity"},
        {"customer_id": 2, "name": "Bob", "sys_end": "2026-04-01T00:00:00+00:00"},
        {"customer_id": 3, "name": "Cyrus", "sys_end": "infinity"},
    ]


def test_table_output_and_stdin(env: dict[str, str]) -> None:
    code, stdout, stderr = invoke(env, "-", stdin=AS_OF_MARCH)
    assert code == 0
    assert "Anna" in stdout and "Cyrus" in stdout and "Ann " not in stdout
    assert "3 rows" in stderr


def test_explain_prints_the_rewritten_sql_without_running_it(env: dict[str, str]) -> None:
    code, stdout, _ = invoke(env, "--explain", "select name from hist.customer_hist "
                                               "for system_time from '2026-01-01' to '2026-02-01' as c")
    assert code == 0
    assert "FROM hist.customer_hist" in stdout
    assert "sys_start < CAST('2026-02-01' AS TIMESTAMPTZ)" in stdout
    assert "AND sys_end > CAST('2026-01-01' AS TIMESTAMPTZ)" in stdout
    assert ") AS c" in stdout


@pytest.mark.parametrize(("sql_text", "message"), [
    ("select * from hist.customer for system_time as of now()",
     "error: hist.customer has no system-time history (no sys_start/sys_end timestamptz columns): "
     "use hist.customer_hist"),
    ("select * from hist.nope for system_time all", "error: hist.nope does not exist in the warehouse"),
    ("select * from hist.customer_hist as c for system_time all",
     "error: cannot parse the query at line 1, column 39 near 'for'"),
    ("select nope from hist.customer_hist for system_time all",
     'error: the warehouse rejected the query: column "nope" does not exist'),
])
def test_errors_are_one_line(env: dict[str, str], sql_text: str, message: str) -> None:
    code, stdout, stderr = invoke(env, sql_text)
    assert code == 1
    assert stdout == ""
    assert stderr.startswith(message)
    assert stderr.count("\n") == 1


@pytest.mark.parametrize("instant", ["garbage", "2026-13-45 06:00", "select 1"])
def test_a_known_at_that_is_no_instant_is_refused_in_one_line(env: dict[str, str], instant: str) -> None:
    code, stdout, stderr = invoke(env, "--known-at", instant, "select 1")
    assert code == 1 and stdout == ""
    assert stderr.startswith(f"error: --known-at {instant!r} is not an instant: "), stderr
    assert stderr.count("\n") == 1


@pytest.mark.parametrize("statement", ["set search_path = silver", "reset all", "do $$ begin end $$"])
def test_statements_sqlglot_does_not_know_warn_at_most_once(env: dict[str, str], statement: str) -> None:
    # a process of its own: pytest's log capture would swallow what sqlglot logs
    result = medallion("query", statement, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("unsupported syntax") <= 1, result.stderr
