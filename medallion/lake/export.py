"""Bronze to Iceberg, incrementally by commit position and exactly once.

Bronze is append-only and written in commit order, so a bronze table's rows up to a commit
position never change once that position is visible. Each Iceberg append carries the position
it reaches in its snapshot summary (POSITION); the append and the position are one atomic
Iceberg commit (the catalog swaps the metadata pointer or nothing happens). A run resumes from
the position of the table's newest snapshot that has one: a crash before a commit leaves only
unreferenced files, a crash after it is resumed past it, and nothing is appended twice.

Chunks end on a commit boundary (never inside one source transaction), so Spark never reads
half a transaction, and memory stays bounded by chunk_rows (plus one transaction).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from medallion.bronze import store
from medallion.context import Context
from medallion.db import connect
from medallion.sqlfiles import sql_text
from medallion.errors import LakeExportFailed, TransientError
from medallion.lake.dependencies import require
from medallion.lake.target import BRONZE_NAMESPACE, LakeTarget, lake_target, open_catalog
from medallion.settings import Settings

POSITION = "medallion.bronze.commit-lsn"  # snapshot summary: every bronze row up to here is in the table
# bronze.table_schema's table property: the lake's bronze is complete up to this commit position
# (the ingest state's when the export began; Spark's builds read up to here, as PostgreSQL's do)
COMPLETE = "medallion.bronze.complete-lsn"
IDENTITY = "medallion.bronze.identity"  # table property: the bronze its rows came from (bronze_identity.sql)
SCHEMA_TABLE = "table_schema"
CHUNK_ROWS = 200_000
LOCK_KEY = 0x6D65645F6C616B  # one exporter per warehouse: pg_try_advisory_lock


class ExportBusy(TransientError):
    """Another `medallion export` holds the warehouse's export lock."""


@dataclass
class TableExport:
    table: str
    rows: int = 0
    commits: int = 0
    position: int = -1


@dataclass
class ExportReport:
    tables: list[TableExport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def exported_position(table) -> int:  # table: pyiceberg.table.Table
    """The bronze position the table holds: POSITION of its newest snapshot that records one.

    Snapshots written by others (compaction, expiry) carry no position and are walked past."""
    from pyiceberg.table.snapshots import ancestors_of

    current = table.current_snapshot()
    if current is None:
        return -1
    for snapshot in ancestors_of(current, table.metadata):
        value = (snapshot.summary.additional_properties if snapshot.summary else {}).get(POSITION)
        if value is not None:
            return int(value)
    return -1


def _statement(conn: psycopg.Connection, file: str, table: str) -> str:
    """A .sql file with its table identifier quoted in (never formatted in as text)."""
    return sql.SQL(sql_text("medallion.lake", file)).format(table=sql.Identifier("bronze", table)).as_string(conn)


def _adbc_uri(dsn: str) -> str:
    """libpq keyword DSN as a postgresql:// URI (ADBC takes URIs only)."""
    from urllib.parse import quote, urlencode

    from psycopg.conninfo import conninfo_to_dict

    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    host = params.pop("host", "")
    db = params.pop("dbname", "")
    user = params.pop("user", "")
    password = params.pop("password", None)
    if host.startswith("/"):
        params["host"] = host
        host = ""
    auth = quote(user) + (f":{quote(password)}" if password else "") + "@" if user else ""
    query = urlencode(params)
    return f"postgresql://{auth}{quote(host)}/{quote(db)}" + (f"?{query}" if query else "")


def export(settings: Settings | Context, chunk_rows: int = CHUNK_ROWS,
           on_commit: Callable[[TableExport], None] = lambda _: None) -> ExportReport:
    """Append every bronze row past each Iceberg table's position; returns what was appended."""
    require("pyiceberg", "adbc_driver_postgresql")
    import adbc_driver_postgresql.dbapi as adbc

    ctx = Context.of(settings)
    target = lake_target(ctx)
    report = ExportReport()
    began = time.perf_counter()
    warehouse = ctx.endpoints.warehouse
    with connect(warehouse, "warehouse", autocommit=True) as conn:
        if not conn.execute("select pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0]:
            raise ExportBusy("another 'medallion export' is running on this warehouse: wait for it to finish")
        tables = sorted(store.recorded_tables(conn))
        if not tables:
            return report
        complete = int(conn.execute(sql_text("medallion.lake", "ingest_position.sql")).fetchone()[0])
        identity = str(conn.execute(sql_text("medallion.lake", "bronze_identity.sql")).fetchone()[0])
        catalog = open_catalog(target)
        catalog.create_namespace_if_not_exists(BRONZE_NAMESPACE)
        with adbc.connect(_adbc_uri(warehouse)) as reader:
            for table in [SCHEMA_TABLE, *tables]:
                done = _export_table(conn, reader, catalog, target, table, chunk_rows, on_commit, identity)
                report.tables.append(done)
        _mark_complete(catalog.load_table((BRONZE_NAMESPACE, SCHEMA_TABLE)), complete)
        conn.execute("select pg_advisory_unlock(%s)", [LOCK_KEY])
    report.seconds = time.perf_counter() - began
    return report


def complete_position(table) -> int:  # table: pyiceberg.table.Table (bronze.table_schema)
    """How far the lake's bronze is complete (COMPLETE); -1 before the first export recorded it."""
    return int(table.properties.get(COMPLETE, -1))


def _mark_complete(table, position: int) -> None:
    """Record COMPLETE after every table was exported: a crash before it leaves the older, lower
    position, which only makes Spark's next build stop earlier (never read half of anything)."""
    if position > complete_position(table):
        with table.transaction() as transaction:
            transaction.set_properties({COMPLETE: str(position)})


def _read(reader, statement: str, params: tuple):  # -> pyarrow.Table
    with reader.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetch_arrow_table()


def _export_table(conn: psycopg.Connection, reader, catalog, target: LakeTarget, table: str, chunk_rows: int,
                  on_commit: Callable[[TableExport], None], identity: str) -> TableExport:
    rows_sql = _statement(conn, "table_schema_rows.sql" if table == SCHEMA_TABLE else "bronze_rows.sql", table)
    end_sql = _statement(conn, "bronze_chunk_end.sql", table)
    high = int(conn.execute(_statement(conn, "bronze_high.sql", table)).fetchone()[0])
    identifier = (BRONZE_NAMESPACE, table)
    if catalog.table_exists(identifier):
        iceberg = catalog.load_table(identifier)
    else:
        empty = _read(reader, rows_sql, (-1, -1))
        iceberg = catalog.create_table(identifier, schema=empty.schema,
                                       properties={"medallion.source": f"bronze.{table} (warehouse PostgreSQL)",
                                                   IDENTITY: identity})
    recorded = iceberg.properties.get(IDENTITY)
    if recorded is not None and recorded != identity:
        raise LakeExportFailed(f"Iceberg {'.'.join(identifier)} holds the rows of another bronze (another warehouse, "
                               f"or this one before a reset): drop the lake's tables from catalog "
                               f"{target.catalog_name!r} (or point [lake] elsewhere) to export this bronze")
    if recorded is None:  # exported before the lake recorded identities: this bronze's from now on
        with iceberg.transaction() as transaction:
            transaction.set_properties({IDENTITY: identity})
        iceberg = catalog.load_table(identifier)
    done = TableExport(table, position=exported_position(iceberg))
    if done.position > high:
        raise LakeExportFailed(f"Iceberg {'.'.join(identifier)} is at bronze position {done.position}, past bronze's "
                               f"{high}: it was exported from another warehouse; drop it from catalog "
                               f"{target.catalog_name!r} to export again")
    while done.position < high:
        row = conn.execute(end_sql, {"position": done.position, "high": high, "chunk_rows": chunk_rows}).fetchone()
        upto = int(row[0]) if row else high
        chunk = _read(reader, rows_sql, (done.position, upto))
        if not set(chunk.schema.names) <= set(iceberg.schema().column_names):
            # bronze grew a column (table_schema's event, relid): the Iceberg table gets it too
            with iceberg.update_schema() as update:
                update.union_by_name(chunk.schema)
        iceberg.append(chunk, snapshot_properties={POSITION: str(upto)})
        done.position, done.rows, done.commits = upto, done.rows + chunk.num_rows, done.commits + 1
        on_commit(done)
    return done
