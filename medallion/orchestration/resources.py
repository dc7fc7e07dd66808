"""Resources: the pipeline's Settings (its DSNs) and the dbt CLI of this environment."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from dagster_dbt import DbtCliResource

from medallion.db import endpoints
from medallion.settings import DEFAULT_ANALYST_ROLE, DEFAULT_SLOT, Settings, load_settings
from medallion.transform import dbt_profile


class MedallionResource(ConfigurableResource):
    """Where the pipeline runs: the fields of medallion.settings.Settings.

    Without DSNs, the embedded cluster under `home` (which must be up: `medallion up`)."""

    home: str
    source_dsn: str | None = None
    warehouse_dsn: str | None = None
    slot: str = DEFAULT_SLOT
    pagila_dir: str | None = None
    config_path: str | None = None
    analyst_role: str = DEFAULT_ANALYST_ROLE

    @classmethod
    def from_settings(cls, settings: Settings) -> MedallionResource:
        return cls(home=str(settings.home), source_dsn=settings.source_dsn, warehouse_dsn=settings.warehouse_dsn,
                   slot=settings.slot, pagila_dir=str(settings.pagila_dir) if settings.pagila_dir else None,
                   config_path=str(settings.config_path) if settings.config_path else None,
                   analyst_role=settings.analyst_role)

    @classmethod
    def from_environment(cls) -> MedallionResource:
        """Settings as the `medallion` command reads them; DSNs given by the environment stay
        references to their variables (EnvVar), so a password never shows in the Dagster UI."""
        settings = load_settings()
        dsn = {name: EnvVar(name) if os.environ.get(name) else None
               for name in ("MEDALLION_SOURCE_DSN", "MEDALLION_WAREHOUSE_DSN")}
        return cls(home=str(settings.home), source_dsn=dsn["MEDALLION_SOURCE_DSN"],
                   warehouse_dsn=dsn["MEDALLION_WAREHOUSE_DSN"], slot=settings.slot,
                   pagila_dir=str(settings.pagila_dir) if settings.pagila_dir else None,
                   config_path=str(settings.config_path) if settings.config_path else None,
                   analyst_role=settings.analyst_role)

    def settings(self) -> Settings:
        return Settings(home=Path(self.home), source_dsn=self.source_dsn or None,
                        warehouse_dsn=self.warehouse_dsn or None, slot=self.slot,
                        pagila_dir=Path(self.pagila_dir) if self.pagila_dir else None,
                        config_path=Path(self.config_path) if self.config_path else None,
                        analyst_role=self.analyst_role)

    @contextmanager
    def dbt_profile(self) -> Iterator[None]:
        """The build project's profiles.yml reads MEDALLION_DBT_*: set them for the dbt subprocess
        (it inherits os.environ when it starts), and restore them afterwards."""
        with dbt_profile(endpoints(self.settings()).warehouse):
            yield


def dbt_executable() -> str:
    """The dbt beside this interpreter (the venv's), which need not be on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_resource(project_dir: Path) -> DbtCliResource:
    return DbtCliResource(project_dir=str(project_dir), profiles_dir=str(project_dir),
                          dbt_executable=dbt_executable())
