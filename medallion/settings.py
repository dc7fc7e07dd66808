"""Where things are: the one place that turns the environment into DSNs, paths and names.

With MEDALLION_SOURCE_DSN and MEDALLION_WAREHOUSE_DSN set, every command uses those servers
(`medallion query` uses MEDALLION_QUERY_DSN, else the warehouse as MEDALLION_ANALYST_ROLE).
Without them, both are databases of the embedded cluster under MEDALLION_HOME. What is
captured and how silver names it comes from the project file (MEDALLION_CONFIG or ./medallion.toml).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from medallion.config import CONFIG_FILE, PLUGINS, ProjectConfig, load_config
from medallion.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
# The Pagila example project: its medallion.toml names the seed's tables and points at transform/.
PAGILA_CONFIG = REPO_ROOT / "medallion.toml"

SOURCE_DB = "pagila"
WAREHOUSE_DB = "warehouse"
DEFAULT_SLOT = "medallion_bronze"
# The login role `medallion query` runs as, and that every build grants read access to silver
# and gold (docs/reliability.md, "Security and roles").
DEFAULT_ANALYST_ROLE = "medallion_analyst"


@dataclass(frozen=True)
class Settings:
    home: Path
    source_dsn: str | None
    warehouse_dsn: str | None
    slot: str
    pagila_dir: Path | None
    config_path: Path | None = None  # medallion.toml; None: the default selection, no project dbt
    plugin: str | None = None  # MEDALLION_PLUGIN; else medallion.toml's [capture] plugin; else pgoutput
    query_dsn: str | None = None  # MEDALLION_QUERY_DSN; None: the warehouse DSN as analyst_role
    analyst_role: str = DEFAULT_ANALYST_ROLE

    @property
    def embedded(self) -> bool:
        """True when the DSNs are not given: the CLI manages its own cluster."""
        return not (self.source_dsn and self.warehouse_dsn)

    def config(self) -> ProjectConfig:
        """The project file, read (and checked) now."""
        return load_config(self.config_path)

    def asked_plugin(self) -> str | None:
        """The output plugin asked for (MEDALLION_PLUGIN, else medallion.toml), or None: a new
        pipeline then uses pgoutput, an existing one keeps the plugin its slot was made with."""
        plugin = self.plugin or self.config().plugin
        if plugin is not None and plugin not in PLUGINS:
            raise ConfigError(f"MEDALLION_PLUGIN={plugin!r} is not an output plugin medallion reads: use "
                              f"{' or '.join(PLUGINS)}")
        return plugin


def config_path(env: dict[str, str] | os._Environ[str]) -> Path | None:
    """MEDALLION_CONFIG, else ./medallion.toml when there is one."""
    if env.get("MEDALLION_CONFIG"):
        return Path(env["MEDALLION_CONFIG"]).resolve()
    local = Path.cwd() / CONFIG_FILE
    return local.resolve() if local.is_file() else None


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
        config_path=config_path(env),
        plugin=env.get("MEDALLION_PLUGIN") or None,
        query_dsn=env.get("MEDALLION_QUERY_DSN") or None,
        analyst_role=env.get("MEDALLION_ANALYST_ROLE") or DEFAULT_ANALYST_ROLE,
    )
