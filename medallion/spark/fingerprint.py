"""Are the two engines' tables equal? The md5 of a relation's rows, normalised, in sorted order.

The normalisation (docs/scale-out.md) is the documented difference between the engines:
- an open version ends at 'infinity' on PostgreSQL and at 9999-12-31 23:59:59.999999 on Spark:
  both read as the latter;
- instants as UTC 'YYYY-MM-DD HH:MM:SS.ffffff', dates as 'YYYY-MM-DD', bytes as lower-case hex,
  booleans as true/false, NULL as \\N, char(n) padded to n (as both engines store it), exact numbers without trailing fractional zeros (the
  same number: coalesce(sum, 0) is 0 on PostgreSQL and 0.00 on Spark); everything else (text,
  PostgreSQL types that Spark keeps as their text form: uuid, json, arrays, intervals, tsvector)
  as each engine's text, which is the same text.
Rows are joined with U+001F between values and sorted as text before the md5.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg
from psycopg import sql

FAR_FUTURE = "9999-12-31 23:59:59.999999"
SEPARATOR = "\x1f"
NULL = "\\N"


@dataclass(frozen=True)
class Fingerprint:
    rows: int
    md5: str


def _digest(rows: list[str]) -> Fingerprint:
    return Fingerprint(len(rows), hashlib.md5("\n".join(sorted(rows)).encode("utf-8")).hexdigest())


def _postgres_value(column: str, data_type: str, length: int | None = None) -> sql.Composable:
    ident = sql.Identifier(column)
    if data_type == "character" and length:
        # char(n) as stored, padded to n (::text would drop the padding that Spark's string keeps)
        text = sql.SQL("rpad({c}::text, {n})").format(c=ident, n=sql.Literal(length))
    elif data_type == "timestamp with time zone":
        text = sql.SQL("case when {c} = 'infinity' then {far} else to_char({c} at time zone 'UTC', "
                       "'YYYY-MM-DD HH24:MI:SS.US') end").format(c=ident, far=sql.Literal(FAR_FUTURE))
    elif data_type == "timestamp without time zone":
        text = sql.SQL("to_char({c}, 'YYYY-MM-DD HH24:MI:SS.US')").format(c=ident)
    elif data_type == "date":
        text = sql.SQL("to_char({c}, 'YYYY-MM-DD')").format(c=ident)
    elif data_type == "bytea":
        text = sql.SQL("encode({c}, 'hex')").format(c=ident)
    elif data_type == "numeric":
        text = sql.SQL("trim_scale({c})::text").format(c=ident)
    else:
        text = sql.SQL("{c}::text").format(c=ident)
    return sql.SQL("coalesce({text}, {null})").format(text=text, null=sql.Literal(NULL))


def postgres_fingerprint(conn: psycopg.Connection, schema: str, table: str) -> Fingerprint:
    """The fingerprint of a warehouse relation (table or view)."""
    return _digest(_postgres_rows(conn, schema, table))


def _postgres_rows(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    columns = conn.execute("select column_name, data_type, character_maximum_length from information_schema.columns "
                           "where table_schema = %s and table_name = %s order by ordinal_position",
                           [schema, table]).fetchall()
    values = sql.SQL(", ").join(_postgres_value(name, data_type, length) for name, data_type, length in columns)
    statement = sql.SQL("select concat_ws({sep}, {values}) from {table}").format(
        sep=sql.Literal(SEPARATOR), values=values, table=sql.Identifier(schema, table))
    return [row[0] for row in conn.execute(statement).fetchall()]


def spark_quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _spark_value(column: str, data_type: str) -> str:
    c = spark_quote(column)
    if data_type in ("timestamp", "timestamp_ntz"):
        text = f"date_format({c}, 'yyyy-MM-dd HH:mm:ss.SSSSSS')"
    elif data_type == "date":
        text = f"date_format({c}, 'yyyy-MM-dd')"
    elif data_type == "binary":
        text = f"lower(hex({c}))"
    elif data_type.startswith("decimal"):
        text = f"regexp_replace(regexp_replace(cast({c} as string), '(\\\\.[0-9]*?)0+$', '$1'), '\\\\.$', '')"
    else:
        text = f"cast({c} as string)"
    return f"coalesce({text}, '\\\\N')"


def spark_fingerprint(session, schema: str, table: str, columns: list[str] | None = None) -> Fingerprint:
    """The fingerprint of a lake relation; columns: which (and in which order), default all."""
    return _digest(_spark_rows(session, schema, table, columns))


def normalised_rows(conn: psycopg.Connection, session, schema: str, table: str,
                    columns: list[str]) -> tuple[list[str], list[str]]:
    """Both engines' normalised rows of one relation, to show where they differ."""
    return _postgres_rows(conn, schema, table), _spark_rows(session, schema, table, columns)


def _spark_rows(session, schema: str, table: str, columns: list[str] | None) -> list[str]:
    relation = f"{spark_quote(schema)}.{spark_quote(table)}"
    fields = {f.name: f.dataType.simpleString() for f in session.table(relation).schema.fields}
    names = columns if columns is not None else list(fields)
    values = ", ".join(_spark_value(name, fields[name]) for name in names)
    return [row[0] for row in session.sql(f"select concat_ws('\\u001f', {values}) from {relation}").collect()]


def compared_relations(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Every silver table and view and every gold mart of the PostgreSQL target, without the engines'
    bookkeeping (watermarks, bases, partitions). Gold's line views are left out: their days_out is
    the same number at another scale on each engine (docs/scale-out.md); the marts that round it
    are compared."""
    rows = conn.execute(
        "select table_schema, table_name from information_schema.tables "
        "where (table_schema = 'silver' or (table_schema = 'gold' and table_type = 'BASE TABLE')) "
        "and table_name not in ('build_watermark', 'follow_step', 'stored_build') "
        "and table_name not like '%%\\_\\_seen' "
        "and table_name !~ '_p[0-9]{4}_[0-9]{2}$' "
        "order by 1, 2").fetchall()
    return [(schema, name) for schema, name in rows]


def differences(conn: psycopg.Connection, session) -> tuple[int, list[str]]:
    """(relations compared, one line per relation whose fingerprints differ, with its first
    differing rows): the same bronze must give the same silver and gold on both engines."""
    relations = compared_relations(conn)
    differing = []
    for schema, name in relations:
        columns = [c for (c,) in conn.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
            "order by ordinal_position", [schema, name]).fetchall()]
        on_postgres = postgres_fingerprint(conn, schema, name)
        on_spark = spark_fingerprint(session, schema, name, columns)
        if on_postgres != on_spark:
            pg_rows, spark_rows = normalised_rows(conn, session, schema, name, columns)
            differing.append(f"{schema}.{name}: postgres {on_postgres}, spark {on_spark}; "
                             f"only on postgres: {sorted(set(pg_rows) - set(spark_rows))[:3]}; "
                             f"only on spark: {sorted(set(spark_rows) - set(pg_rows))[:3]}")
    return len(relations), differing
