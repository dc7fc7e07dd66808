"""The fingerprint a plain dbt run in your project computes for its stored steps: the same one
`medallion build` computes (stored_build.py) when the project was set up by `medallion dbt-setup`.
Reached from dbt's Jinja (gold/jinja.py patch_dbt_context); it imports the build (stored_build.py) only when called, and never the planner."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from medallion.silver.project import ENGINE_DIR, SILVER_PACKAGE

ENGINE_PACKAGE = "medallion"
PACKAGES_DIR = "dbt_packages"


def schemas_sql() -> str:
    """The digest of bronze's recorded schemas, one of the fingerprint's parts."""
    from medallion.stored_build import SQL

    return SQL["schemas"]


def project_fingerprint(schemas: str) -> str | None:
    """The fingerprint `medallion build` computes for the project dbt runs now, when it is a
    project set up by `medallion dbt-setup` (None otherwise: its steps are not medallion build's)."""
    from dbt.flags import get_flags

    from medallion.stored_build import fingerprint_of, parts_of

    own = Path(getattr(get_flags(), "PROJECT_DIR", None) or os.getcwd()).resolve()
    try:
        declared = yaml.safe_load((own / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    installed = own / str(declared.get("packages-install-path") or PACKAGES_DIR)
    silver, engine = installed / SILVER_PACKAGE, installed / ENGINE_PACKAGE
    if not silver.is_dir() or not engine.is_dir() or engine.resolve() != ENGINE_DIR.resolve():
        return None
    return fingerprint_of(parts_of(str(schemas), [silver.resolve(), ENGINE_DIR, own]))
