"""Where things are: the one place that turns the environment into DSNs, paths and names.

With MEDALLION_SOURCE_DSN and MEDALLION_WAREHOUSE_DSN set, every command uses those servers.
Without them, both are databases of the embedded cluster under MEDALLION_HOME.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "transform"

SOURCE_DB = "pagila"
WAREHOUSE_DB = "warehouse"
DEFAULT_SLOT = "medallion_bronze"


@dataclass(frozen=True)
class Settings:
    home: Path
    source_dsn: str | None
    warehouse_dsn: str | None
    slot: str
    pagila_dir: Path | None

    @property
    def embedded(self) -> bool:
        """True when the DSNs are not given: the CLI manages its own cluster."""
        return not (self.source_dsn and self.warehouse_dsn)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = Path(env.get("MEDALLION_HOME") or Path.cwd() / ".medallion").resolve()
    pagila = env.get("PAGILA_DIR")
    return Settings(
        home=home,
        source_dsn=env.get("MEDALLION_SOURCE_DSN") or None,
        warehouse_dsn=env.get("MEDALLION_WAREHOUSE_DSN") or None,
        slot=env.get("MEDALLION_SLOT") or DEFAULT_SLOT,
        pagila_dir=Path(pagila).resolve() if pagila else None,
    )
