"""Connections to the source and the warehouse, with errors that say which DSN to fix."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from medallion.errors import ConnectionFailed, InvalidDsn, MedallionError
from medallion.settings import SOURCE_DB, WAREHOUSE_DB, Settings
# .sql files are read by medallion.sqlfiles (a leaf); still importable from here for code written against db.py.
from medallion.sqlfiles import named_sql, sql_text  # noqa: F401

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
        return Endpoints(check_dsn(settings.source_dsn, "MEDALLION_SOURCE_DSN"),
                         check_dsn(settings.warehouse_dsn, "MEDALLION_WAREHOUSE_DSN"))
    if bool(settings.source_dsn) != bool(settings.warehouse_dsn):
        raise MedallionError(
            "set both MEDALLION_SOURCE_DSN and MEDALLION_WAREHOUSE_DSN, or neither for the embedded cluster"
        )
    from medallion.source.cluster import EmbeddedCluster

    cluster = EmbeddedCluster(settings.home)
    if not cluster.is_running():
        raise ConnectionFailed(f"the embedded cluster in {settings.home} is not running: run 'medallion up'")
    cluster.check_locked_down()
    return Endpoints(cluster.dsn(SOURCE_DB), cluster.dsn(WAREHOUSE_DB))


def query_dsn(settings: Settings, warehouse: str | None = None) -> str:
    """Where `medallion query` connects: MEDALLION_QUERY_DSN, else the warehouse as the read-only role.

    Analysts' SQL never runs with the pipeline's privileges: without MEDALLION_QUERY_DSN the
    warehouse DSN is reused with its user replaced by the analyst role (MEDALLION_ANALYST_ROLE)
    and its password left out (libpq then looks in ~/.pgpass, or PGPASSFILE, for that role).
    warehouse: the warehouse DSN when already resolved (medallion.context)."""
    if settings.query_dsn:
        return check_dsn(settings.query_dsn, "MEDALLION_QUERY_DSN")
    params = conninfo_to_dict(warehouse or endpoints(settings).warehouse)
    params.pop("password", None)
    params["user"] = settings.analyst_role
    return make_conninfo(**params)


def check_dsn(dsn: str, variable: str) -> str:
    """The DSN itself when libpq can read it; otherwise one InvalidDsn naming the variable.

    Parsing happens here, once, so that a malformed DSN never reaches psycopg, psycopg2 or dbt
    (each would fail in its own way, some with a traceback)."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise InvalidDsn(f"{variable} is not a valid connection string ({redact(dsn)}): {_first_line(exc)}; "
                         "write key=value pairs (host=db.example.com dbname=shop user=cdc) "
                         "or a URI (postgresql://cdc@db.example.com/shop)") from None
    for port in str(params.get("port") or "").split(","):
        if port.strip() and not port.strip().isdigit():
            raise InvalidDsn(f"{variable} has port={port.strip()!r}, which is not a number ({redact(dsn)}): "
                             "give the server's TCP port, e.g. port=5432")
    if "dbname" in params and not str(params["dbname"]).strip():
        raise InvalidDsn(f"{variable} has an empty dbname ({redact(dsn)}): name the database, e.g. dbname=shop")
    return dsn


# A password in any of libpq's forms: keyword (quoted values may hold spaces and \' escapes),
# URI user info (postgresql://user:secret@host) and URI query parameter (?password=secret).
_URI_USERINFO = re.compile(r"(postgres(?:ql)?://[^:/?#@\s]*:)[^@\s]*@", re.I)
_URI_PARAMETER = re.compile(r"([?&](?:ssl)?password=)[^&#\s]*", re.I)
_KEYWORD = re.compile(r"(?<![\w?&])((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)", re.I)


def redact(text: str) -> str:
    """A DSN (or any text holding one) fit for messages and logs: every password replaced by ***."""
    text = _URI_USERINFO.sub(r"\1***@", text)
    text = _URI_PARAMETER.sub(r"\1***", text)
    return _KEYWORD.sub(r"\1***", text)


def connection_reason(exc: BaseException) -> str:
    """libpq's reason on one line, whole: 'connection to server at ... failed: Connection refused
    (Is the server running ...?)'. The last line alone is only the hint, and loses the reason."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    first = re.sub(r"^(connection failed|connection is bad):\s*", "", lines[0])
    return first + "".join(f" ({line})" for line in lines[1:])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def connect(dsn: str, role: str, autocommit: bool = False, *, hint: str | None = None,
            **kwargs: object) -> psycopg.Connection:
    """Open a connection; a failure names the role (source or warehouse), keeps PostgreSQL's reason
    and says what to fix (hint replaces the default: check MEDALLION_<ROLE>_DSN)."""
    try:
        return psycopg.connect(
            dsn, autocommit=autocommit, options=SESSION_OPTIONS,
            application_name=f"medallion-{role}", connect_timeout=10, **kwargs,
        )
    except psycopg.Error as exc:
        fix = hint or f"check MEDALLION_{role.upper()}_DSN or run 'medallion up'"
        raise ConnectionFailed(
            f"cannot reach the {role} database ({redact(dsn)}): {redact(connection_reason(exc))}; {fix}"
        ) from None

