"""The dbt project's definitions and the build/run commands, checked without a database."""

from __future__ import annotations

from click.testing import CliRunner

from medallion.cli import cli
from medallion.transform import profile_env


def test_build_and_run_help_show_an_example() -> None:
    for command in ("build", "run"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example" in result.output and f"medallion {command}" in result.output


def test_profile_env_from_keyword_dsn_and_uri() -> None:
    env = profile_env("host=/tmp/run port=5433 user=postgres dbname=wh_3")
    assert env["MEDALLION_DBT_HOST"] == "/tmp/run" and env["MEDALLION_DBT_PORT"] == "5433"
    assert env["MEDALLION_DBT_DBNAME"] == "wh_3" and env["MEDALLION_DBT_PASSWORD"] == ""
    env = profile_env("postgresql://alice:s3cret@db.example:6543/warehouse?sslmode=require")
    assert (env["MEDALLION_DBT_USER"], env["MEDALLION_DBT_PASSWORD"], env["MEDALLION_DBT_SSLMODE"]) == \
        ("alice", "s3cret", "require")
