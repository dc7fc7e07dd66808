"""`medallion query --engine spark`: the same temporal SQL, answered by Spark from the lake.

The statement is read as PostgreSQL (what analysts write for the warehouse), its FOR SYSTEM_TIME
clauses are rewritten exactly as for PostgreSQL (medallion/query/rewrite.py) against the lake's
catalog, and sqlglot writes the result in Spark's dialect. Results come back as the values
PostgreSQL's driver would give: aware UTC datetimes, Decimals, and the far-future end of an
open version as the same stand-in for 'infinity', so --format table/csv/json print the same text.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from medallion.context import Context
from medallion.errors import SparkQueryFailed
from medallion.lake.target import lake_target
from medallion.query.catalog import Catalog
from medallion.query.rewrite import has_system_time, known_at, parse, rewrite_tree
from medallion.query.run import INFINITY, QueryResult
from medallion.settings import Settings

DIALECT = "spark"
NAMESPACES = ("silver", "gold", "bronze")
FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)


def lake_catalog(session) -> Catalog:
    """The lake's relations; versioned: tables with sys_start and sys_end timestamps (the histories)."""
    relations, versioned = set(), set()
    existing = {row[0] for row in session.sql("show namespaces").collect()}
    for namespace in NAMESPACES:
        if namespace not in existing:
            continue
        names = {row[1] for row in session.sql(f"show tables in `{namespace}`").collect()}
        names |= {row[1] for row in session.sql(f"show views in `{namespace}`").collect()}
        for name in names:
            relations.add((namespace, name))
            if namespace == "silver" and name.endswith("_hist"):
                fields = {f.name: f.dataType.simpleString()
                          for f in session.table(f"`{namespace}`.`{name}`").schema.fields}
                if fields.get("sys_start") == fields.get("sys_end") == "timestamp":
                    versioned.add((namespace, name))
    return Catalog(versioned=frozenset(versioned), relations=frozenset(relations), search_path=("silver", "gold"))


def transpile(sql_text: str, catalog: Catalog, pretty: bool = False, known_at_text: str | None = None) -> str:
    """PostgreSQL text with FOR SYSTEM_TIME -> Spark SQL; known_at_text as for PostgreSQL (--known-at)."""
    from sqlglot import exp

    tree = parse(sql_text)
    if has_system_time(tree):
        tree = rewrite_tree(tree, catalog, known_at(known_at_text))
    for cast in list(tree.find_all(exp.Cast)):
        # 'infinity' (an open end, as the rewrite writes it) is the lake's far future
        if isinstance(cast.this, exp.Literal) and cast.this.is_string and cast.this.name.lower() == "infinity":
            cast.replace(exp.cast(exp.Literal.string(FAR_FUTURE.strftime("%Y-%m-%d %H:%M:%S.%f")), "timestamp"))
    return tree.sql(dialect=DIALECT, pretty=pretty)


def _value(value: Any) -> Any:
    """pyspark gives instants as naive local datetimes: as aware UTC, the far future as infinity."""
    if isinstance(value, datetime):
        aware = value.astimezone(timezone.utc) if value.tzinfo is None else value
        return INFINITY if aware >= FAR_FUTURE else aware
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _session(settings: Settings | Context):
    from medallion.spark.session import spark_session

    return spark_session(lake_target(settings))


def run_spark_query(settings: Settings | Context, sql_text: str, known_at_text: str | None = None,
                    strict: bool = False) -> QueryResult:
    """Run one read-only statement on the lake with Spark.

    Silver's horizon lives in the warehouse (silver.horizon()), not in the lake: on Spark a
    question past it is neither warned about nor refused, so strict is accepted and ignored
    (docs/scale-out.md)."""
    session = _session(settings)
    statement = transpile(sql_text, lake_catalog(session), known_at_text=known_at_text)
    if not statement.lstrip().lower().startswith(("select", "with", "(", "values", "show", "describe")):
        raise SparkQueryFailed("medallion query reads only: run a SELECT (or WITH ... SELECT)")
    try:
        frame = session.sql(statement)
        rows = frame.collect()
    except Exception as exc:  # pyspark's AnalysisException and friends: one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparkQueryFailed(f"Spark rejected the query: {first}; 'medallion query --engine spark --explain' "
                               "shows the SQL that ran") from None
    return QueryResult(list(frame.columns), [tuple(_value(v) for v in row) for row in rows], statement)


def explain_spark_query(settings: Settings | Context, sql_text: str, known_at_text: str | None = None) -> str:
    """The Spark SQL a query runs as, formatted."""
    return transpile(sql_text, lake_catalog(_session(settings)), pretty=True, known_at_text=known_at_text)
