"""Connections to the source and the warehouse, with errors that say which DSN to fix."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from medallion.errors import ConnectionFailed, MedallionError
from medallion.settings import SOURCE_DB, WAREHOUSE_DB, Settings

# Text forms of values must not depend on the server's or the user's defaults:
# the same source change must always land as the same bronze row.
SESSION_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c bytea_output=hex -c extra_float_digits=1"


@dataclass(frozen=True)
class Endpoints:
    """The two DSNs every command works with."""

    source: str
    warehouse: str


def endpoints(settings: Settings) -> Endpoints:
    """Explicit DSNs when both are set, otherwise the embedded cluster (which must be up)."""
    if not settings.embedded:
        assert settings.source_dsn and settings.warehouse_dsn
        return Endpoints(settings.source_dsn, settings.warehouse_dsn)
    if bool(settings.source_dsn) != bool(settings.warehouse_dsn):
        raise MedallionError(
            "set both MEDALLION_SOURCE_DSN and MEDALLION_WAREHOUSE_DSN, or neither for the embedded cluster"
        )
    from medallion.source.cluster import EmbeddedCluster

    cluster = EmbeddedCluster(settings.home)
    if not cluster.is_running():
        raise ConnectionFailed(f"the embedded cluster in {settings.home} is not running: run 'medallion up'")
    return Endpoints(cluster.dsn(SOURCE_DB), cluster.dsn(WAREHOUSE_DB))


def redact(dsn: str) -> str:
    """A DSN fit for messages: passwords removed."""
    dsn = re.sub(r"(password\s*=\s*)(\S+)", r"\1***", dsn)
    return re.sub(r"(://[^:/@]+:)([^@]+)@", r"\1***@", dsn)


def connect(dsn: str, role: str, autocommit: bool = False, **kwargs: object) -> psycopg.Connection:
    """Open a connection; a failure names the role (source or warehouse) and its variable."""
    try:
        return psycopg.connect(
            dsn, autocommit=autocommit, options=SESSION_OPTIONS,
            application_name=f"medallion-{role}", connect_timeout=10, **kwargs,
        )
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ConnectionFailed(
            f"cannot reach the {role} database ({redact(dsn)}): {reason}; "
            f"check MEDALLION_{role.upper()}_DSN or run 'medallion up'"
        ) from None


def sql_text(package: str, name: str) -> str:
    """The text of a .sql file shipped in a package's sql/ folder (SQL lives in .sql files)."""
    from importlib.resources import files

    return files(package).joinpath("sql", name).read_text(encoding="utf-8")


def named_sql(package: str, name: str) -> dict[str, str]:
    """The '-- name: X' sections of a .sql file, in file order (one statement each)."""
    import re

    parts = re.split(r"^-- name: (.+)\n", sql_text(package, name), flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip().rstrip(";") for i in range(1, len(parts), 2)}
