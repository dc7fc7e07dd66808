"""Helpers for the lake tests: a medallion.toml with a [lake] section in a test's own folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from medallion.settings import PAGILA_CONFIG, REPO_ROOT, Settings


def with_lake(settings: Settings, folder: Path, base: Path | None = PAGILA_CONFIG) -> Settings:
    """settings with a copy of its project file (Pagila's by default) plus [lake]: the Iceberg
    catalog in the test's warehouse database, data files under folder."""
    text = base.read_text(encoding="utf-8") if base else ""
    text = text.replace('dbt_project = "transform"', f'dbt_project = "{REPO_ROOT / "transform"}"')
    text += f'\n[lake]\nwarehouse = "{folder / "files"}"\n'
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "medallion.toml"
    path.write_text(text, encoding="utf-8")
    return replace(settings, config_path=path)
