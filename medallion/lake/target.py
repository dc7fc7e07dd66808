"""Where the lake is: medallion.toml's [lake] resolved against the environment.

One catalog serves both engines: pyiceberg's SqlCatalog and Iceberg's JdbcCatalog (Spark) read
and write the same two tables (iceberg_tables, iceberg_namespace_properties) in one database,
by default the warehouse PostgreSQL itself. Data files go under MEDALLION_HOME/lake unless
[lake] warehouse names a folder or an fsspec/S3 URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

from medallion.db import endpoints
from medallion.errors import LakeNotConfigured
from medallion.settings import Settings

BRONZE_NAMESPACE = "bronze"


@dataclass(frozen=True)
class LakeTarget:
    catalog_name: str
    catalog_uri: str  # SQLAlchemy URL (pyiceberg)
    warehouse: str  # URI of the data files' root
    jdbc_url: str | None  # the same catalog for Spark's JdbcCatalog (None: not a PostgreSQL URL)
    jdbc_user: str | None
    jdbc_password: str | None
    spark_profiles_dir: Path | None


def _sqlalchemy_url(dsn: str) -> tuple[str, str, str | None, str | None]:
    """(SQLAlchemy URL, JDBC URL, user, password) for a libpq DSN. JDBC needs TCP: a socket-only
    DSN keeps its port and reaches the server on localhost (the embedded cluster listens there)."""
    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or "localhost")
    tcp_host = "localhost" if host.startswith("/") else host
    port = str(params.get("port") or 5432)
    user = str(params.get("user") or "postgres")
    password = params.get("password")
    db = str(params["dbname"])
    auth = quote(user) + (f":{quote(str(password))}" if password else "")
    url = f"postgresql+psycopg2://{auth}@{quote(tcp_host)}:{port}/{quote(db)}"
    jdbc = f"jdbc:postgresql://{tcp_host}:{port}/{db}"
    return url, jdbc, user, str(password) if password else None


def lake_target(settings: Settings) -> LakeTarget:
    """The configured lake, or LakeNotConfigured naming the section to add."""
    config = settings.config()
    lake = config.lake
    if lake is None:
        raise LakeNotConfigured(f"{config.where} has no [lake] section: add one (an empty [lake] uses the "
                                "warehouse PostgreSQL as catalog and MEDALLION_HOME/lake for files)")
    warehouse = lake.warehouse or str(settings.home / "lake")
    if "://" not in warehouse:
        Path(warehouse).mkdir(parents=True, exist_ok=True)
        warehouse = Path(warehouse).resolve().as_uri()
    jdbc_url = user = password = None
    if lake.catalog_uri:
        uri = lake.catalog_uri
        if uri.startswith("postgresql"):
            from sqlalchemy.engine import make_url

            parsed = make_url(uri)
            jdbc_url = f"jdbc:postgresql://{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"
            user, password = parsed.username, parsed.password
    else:
        uri, jdbc_url, user, password = _sqlalchemy_url(endpoints(settings).warehouse)
    return LakeTarget(lake.catalog_name, uri, warehouse, jdbc_url, user, password, lake.spark_profiles_dir)


def open_catalog(target: LakeTarget):  # -> pyiceberg.catalog.sql.SqlCatalog
    """pyiceberg's SqlCatalog on the target (it creates its two tables on first use)."""
    from medallion.lake.dependencies import require

    require("pyiceberg")
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(target.catalog_name, uri=target.catalog_uri, warehouse=target.warehouse)
