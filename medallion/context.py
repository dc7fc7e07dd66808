"""What a command works with, resolved once at its entry point: the endpoints, the parsed project
file, the home folder, the slot, the output plugin and the query role.

Settings (medallion/settings.py) is the environment read as it is; a Context is those settings
resolved, each fact at its first use and then kept: the embedded cluster's check and the DSNs'
parsing happen once per command, not once per module that connects (a build used to enter db.py
seven times), and every layer below reads the same parsed medallion.toml. The CLI, the library
API (medallion.pipeline), `run --follow` and the Dagster resource all make one the same way,
`Context.of(settings)`; a function handed a Context uses it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from medallion.config import ProjectConfig
from medallion.settings import Settings, load_settings


def _setting(name: str) -> property:
    """A read-only view of one Settings field, so a Context reads wherever a Settings did."""
    return property(lambda self: getattr(self.settings, name), doc=f"Settings.{name}, as it is.")


@dataclass(eq=False)
class Context:
    """The resolved settings of one command (or one Dagster code location, one follow)."""

    settings: Settings

    @classmethod
    def of(cls, given: Settings | Context) -> Context:
        """The context of these settings; a context is returned as it is (resolved once)."""
        return given if isinstance(given, Context) else cls(given)

    # The settings' own fields, as they are: what any code handed a Settings reads.
    home = _setting("home")  # Path
    slot = _setting("slot")  # str
    source_dsn = _setting("source_dsn")  # str | None
    warehouse_dsn = _setting("warehouse_dsn")  # str | None
    pagila_dir = _setting("pagila_dir")  # Path | None
    config_path = _setting("config_path")  # Path | None
    analyst_role = _setting("analyst_role")  # str
    embedded = _setting("embedded")  # bool

    # Resolved at first use, then kept.
    @cached_property
    def endpoints(self):  # -> medallion.db.Endpoints (db imports the cluster: imported when used)
        """The two DSNs, checked; without them the embedded cluster, which must be up."""
        from medallion.db import endpoints

        return endpoints(self.settings)

    @cached_property
    def config(self) -> ProjectConfig:
        """medallion.toml, read and checked."""
        return self.settings.config()

    @cached_property
    def plugin(self) -> str | None:
        """The output plugin asked for (MEDALLION_PLUGIN, else medallion.toml), or None (Settings.asked_plugin)."""
        return self.settings.asked_plugin()

    @cached_property
    def analyst_dsn(self) -> str:
        """Where analysts' SQL runs: MEDALLION_QUERY_DSN, else the warehouse as the analyst role."""
        from medallion.db import query_dsn

        if self.settings.query_dsn:
            return query_dsn(self.settings)
        return query_dsn(self.settings, self.endpoints.warehouse)


def resolve(environ: dict[str, str] | None = None) -> Context:
    """The context of the environment (os.environ by default): what each entry point starts from."""
    return Context(load_settings(environ))
