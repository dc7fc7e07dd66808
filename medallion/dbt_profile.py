"""The warehouse as dbt's profile sees it: profiles.yml reads MEDALLION_DBT_* variables, set
here from the warehouse DSN for one dbt invocation. A leaf module: the engines, the build and
`medallion env --dbt` all need it, and it needs nothing of theirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg.conninfo import conninfo_to_dict

from medallion.db import redact
from medallion.errors import MedallionError


def profile_env(warehouse_dsn: str) -> dict[str, str]:
    """The variables transform/profiles.yml reads, from a libpq DSN (keyword string or URI)."""
    params = conninfo_to_dict(warehouse_dsn)
    if not params.get("dbname"):
        raise MedallionError(f"the warehouse DSN names no database ({redact(warehouse_dsn)}): add dbname=...")
    return {
        "MEDALLION_DBT_HOST": str(params.get("host") or "localhost"),
        "MEDALLION_DBT_PORT": str(params.get("port") or 5432),
        "MEDALLION_DBT_USER": str(params.get("user") or os.environ.get("PGUSER") or "postgres"),
        "MEDALLION_DBT_PASSWORD": str(params.get("password") or ""),
        "MEDALLION_DBT_DBNAME": str(params["dbname"]),
        "MEDALLION_DBT_SSLMODE": str(params.get("sslmode") or "prefer"),
    }


@contextmanager
def dbt_profile(warehouse_dsn: str) -> Iterator[None]:
    """Set profiles.yml's MEDALLION_DBT_* variables for one dbt invocation (in-process
    or a subprocess that inherits os.environ), then restore them: one build's warehouse never
    leaks into the next (tests build several warehouses in one process)."""
    values = profile_env(warehouse_dsn)
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
