"""Where the lake is: medallion.toml's [lake] resolved against the environment.

One catalog serves both engines: pyiceberg's SqlCatalog and Iceberg's JdbcCatalog (Spark) read
and write the same two tables (iceberg_tables, iceberg_namespace_properties) in one database,
by default the warehouse PostgreSQL itself. JDBC speaks only TCP, so a warehouse reached over a
unix socket (the embedded cluster listens on nothing else, by design) keeps the catalog in a
SQLite file instead (SQLCATALOG_FILE, beside the data files when they are a local folder, else
under MEDALLION_HOME/lake), which both libraries also read and write. Data files go under
MEDALLION_HOME/lake unless [lake] warehouse names a folder or an fsspec/S3 URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

from medallion.context import Context
from medallion.errors import LakeNotConfigured
from medallion.settings import Settings

BRONZE_NAMESPACE = "bronze"
SQLITE_CATALOG_FILE = "catalog.sqlite"


@dataclass(frozen=True)
class LakeTarget:
    catalog_name: str
    catalog_uri: str  # SQLAlchemy URL (pyiceberg)
    warehouse: str  # URI of the data files' root
    jdbc_url: str | None  # the same catalog for Spark's JdbcCatalog (None: neither PostgreSQL nor SQLite)
    jdbc_user: str | None
    jdbc_password: str | None
    spark_profiles_dir: Path | None


def over_socket(dsn: str) -> bool:
    """Whether a libpq DSN reaches its server over a unix socket (no host, or a folder as host)."""
    host = str(conninfo_to_dict(dsn).get("host") or "")
    return host == "" or host.startswith("/")


def _sqlite(folder: Path) -> tuple[str, str]:
    """(SQLAlchemy URL, JDBC URL) of the SQLite catalog file in folder, in WAL mode: Spark's
    JdbcCatalog keeps several connections, and a reader on one must not lock out a commit on
    another (the default rollback journal did: SQLITE_BUSY). The mode is stored in the file."""
    import sqlite3

    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / SQLITE_CATALOG_FILE).resolve()
    with sqlite3.connect(path) as db:
        if db.execute("pragma journal_mode").fetchone()[0] != "wal":
            db.execute("pragma journal_mode=wal")
    return f"sqlite:///{path}", f"jdbc:sqlite:{path}"


def _sqlalchemy_url(dsn: str) -> tuple[str, str, str | None, str | None]:
    """(SQLAlchemy URL, JDBC URL, user, password) for a libpq DSN that reaches its server by TCP."""
    params = conninfo_to_dict(dsn)
    tcp_host = str(params.get("host") or "localhost")
    port = str(params.get("port") or 5432)
    user = str(params.get("user") or "postgres")
    password = params.get("password")
    db = str(params["dbname"])
    auth = quote(user) + (f":{quote(str(password))}" if password else "")
    url = f"postgresql+psycopg2://{auth}@{quote(tcp_host)}:{port}/{quote(db)}"
    jdbc = f"jdbc:postgresql://{tcp_host}:{port}/{db}"
    return url, jdbc, user, str(password) if password else None


def lake_target(settings: Settings | Context) -> LakeTarget:
    """The configured lake, or LakeNotConfigured naming the section to add."""
    ctx = Context.of(settings)
    config = ctx.config
    lake = config.lake
    if lake is None:
        raise LakeNotConfigured(f"{config.where} has no [lake] section: add one (an empty [lake] uses the "
                                "warehouse PostgreSQL as catalog and MEDALLION_HOME/lake for files)")
    warehouse = lake.warehouse or str(ctx.home / "lake")
    local = None if "://" in warehouse else Path(warehouse)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
        warehouse = local.resolve().as_uri()
    jdbc_url = user = password = None
    if lake.catalog_uri:
        uri = lake.catalog_uri
        if uri.startswith("postgresql"):
            from sqlalchemy.engine import make_url

            parsed = make_url(uri)
            jdbc_url = f"jdbc:postgresql://{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"
            user, password = parsed.username, parsed.password
        elif uri.startswith("sqlite:///"):
            jdbc_url = "jdbc:sqlite:" + uri[len("sqlite:///"):]
    elif over_socket(ctx.endpoints.warehouse):
        uri, jdbc_url = _sqlite(local if local is not None else ctx.home / "lake")
    else:
        uri, jdbc_url, user, password = _sqlalchemy_url(ctx.endpoints.warehouse)
    return LakeTarget(lake.catalog_name, uri, warehouse, jdbc_url, user, password, lake.spark_profiles_dir)


def open_catalog(target: LakeTarget):  # -> pyiceberg.catalog.sql.SqlCatalog
    """pyiceberg's SqlCatalog on the target (it creates its two tables on first use)."""
    from medallion.lake.dependencies import require

    require("pyiceberg")
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(target.catalog_name, uri=target.catalog_uri, warehouse=target.warehouse)
