"""medallion's dbt plugin: dbt (1.11, dbt/plugins/manager.py) imports every top-level module
named dbt_* on the path and starts the dbtPlugin classes in its `plugins`. So a plain `dbt build`
in your own dbt project (set up by `medallion dbt-setup`) plans plain-SQL gold marts and names
schemas as `medallion build` does (medallion/dbt_setup.py prepare_dbt)."""

from __future__ import annotations

from dbt.plugins.manager import dbtPlugin


class MedallionPlugin(dbtPlugin):
    """Nothing for dbt's DAG or artifacts: it only prepares dbt's Jinja context."""

    def initialize(self) -> None:
        from medallion.dbt_setup import prepare_dbt

        prepare_dbt()


plugins = [MedallionPlugin]
