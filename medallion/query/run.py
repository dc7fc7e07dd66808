"""Run temporal SQL on the warehouse: rewrite against the live catalog, then execute read-only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import psycopg
from psycopg.types.datetime import DateLoader, TimestampLoader, TimestamptzLoader
from sqlglot import exp

from medallion.context import Context
from medallion.db import connect
from medallion.errors import HorizonExceeded, QueryFailed, QueryParseError
from medallion.query.catalog import load_catalog
from medallion.query.rewrite import (DIALECT, earliest_instants, explain, known_at, latest_instants, not_an_instant,
                                     rewrite)
from medallion.settings import Settings

Params = Mapping[str, Any] | Sequence[Any] | None


# An open version ends at 'infinity', which no Python datetime can hold: psycopg refuses to
# load it. The largest (smallest) value stands in for it, so results stay sortable datetimes;
# formats.py prints them as infinity again.
INFINITY = datetime.max.replace(tzinfo=timezone.utc)
MINUS_INFINITY = datetime.min.replace(tzinfo=timezone.utc)


class _TimestamptzLoader(TimestamptzLoader):
    def load(self, data: Any) -> datetime:
        text = bytes(data)
        if text == b"infinity":
            return INFINITY
        if text == b"-infinity":
            return MINUS_INFINITY
        return super().load(data)


class _TimestampLoader(TimestampLoader):
    def load(self, data: Any) -> datetime:
        text = bytes(data)
        if text in (b"infinity", b"-infinity"):
            return datetime.max if text == b"infinity" else datetime.min
        return super().load(data)


class _DateLoader(DateLoader):
    def load(self, data: Any) -> date:
        text = bytes(data)
        if text in (b"infinity", b"-infinity"):
            return date.max if text == b"infinity" else date.min
        return super().load(data)


@dataclass(frozen=True)
class QueryResult:
    """What a query returned, and the PostgreSQL text that produced it."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    statement: str
    warnings: list[str] = field(default_factory=list)


def _warehouse(settings: Settings | Context) -> psycopg.Connection:
    """A read-only session of the analyst role: analysts' SQL must not change the warehouse, or
    reach beyond it (COPY ... TO PROGRAM, server files), whatever it says.

    The role is a login of its own (never SET ROLE in a privileged session, which the statement
    could RESET): its privileges are the boundary; the read-only transaction catches mistakes."""
    ctx = Context.of(settings)
    fix = ("check MEDALLION_QUERY_DSN" if ctx.settings.query_dsn else
           f"'medallion query' logs in as the read-only role {ctx.analyst_role}: 'medallion up' creates it "
           "on the embedded cluster, 'medallion grant' (as an admin) on a server; or set MEDALLION_QUERY_DSN")
    conn = connect(ctx.analyst_dsn, "warehouse", hint=fix)
    conn.read_only = True
    conn.adapters.register_loader("timestamptz", _TimestamptzLoader)
    conn.adapters.register_loader("timestamp", _TimestampLoader)
    conn.adapters.register_loader("date", _DateLoader)
    return conn


def run_query(settings: Settings | Context, sql_text: str, params: Params = None, known_at_text: str | None = None,
              strict: bool = False) -> QueryResult:
    """Rewrite FOR SYSTEM_TIME clauses and run the statement in one read-only transaction.

    The catalog is read in the same transaction as the query, so the history tables it
    checks are the ones the query reads. params fill %(name)s or %s placeholders (psycopg).
    known_at_text answers every clause as the warehouse knew it then (e.g. the time a report was
    published). A clause asking about a time past silver's horizon (the source time up to which
    every table is complete) adds a warning; with strict it is an error (HorizonExceeded)."""
    known = known_at(known_at_text)
    with _warehouse(settings) as conn:
        _check_instant(conn, known, known_at_text)
        statement = rewrite(sql_text, load_catalog(conn), known)
        warnings = _beyond_horizon(conn, sql_text, params, strict) + _before_whole(conn, sql_text, params, strict)
        try:
            cursor = conn.execute(statement, params)
            rows = cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise QueryFailed(_failure(exc)) from None
        columns = [column.name for column in cursor.description or []]
        conn.rollback()
    return QueryResult(columns, rows, statement, warnings)


def _check_instant(conn: psycopg.Connection, known: exp.Expression | None, text: str | None) -> None:
    """--known-at is refused unless PostgreSQL reads it as an instant (2026-13-45 parses, and is none)."""
    if known is None or text is None:
        return
    try:
        conn.execute(f"select {known.sql(dialect=DIALECT)}").fetchone()
    except psycopg.Error as exc:
        conn.rollback()
        raise QueryParseError(not_an_instant(text, (exc.diag.message_primary or str(exc)).strip())) from None


def _beyond_horizon(conn: psycopg.Connection, sql_text: str, params: Params, strict: bool) -> list[str]:
    """One line when the query asks about a source time silver may not be complete for yet."""
    instants = latest_instants(sql_text)
    if not instants or conn.execute("select to_regprocedure('silver.horizon()') is null").fetchone()[0]:
        return []
    try:
        latest, horizon = conn.execute(
            f"select greatest({', '.join(instants)}), silver.horizon()", params).fetchone()
    except psycopg.Error:
        conn.rollback()  # the query itself will say what is wrong with it
        return []
    if horizon is None or latest is None or latest <= horizon:
        return []
    message = (f"the answer may be incomplete: it asks about {latest.isoformat(sep=' ')}, but silver is complete "
               f"only up to {horizon.isoformat(sep=' ')} (the source time of the last ingest every table has been "
               "built from): run 'medallion run' first, or ask about an earlier time")
    if strict:
        raise HorizonExceeded(message)
    return [message]


def _before_whole(conn: psycopg.Connection, sql_text: str, params: Params, strict: bool) -> list[str]:
    """One line per table the query asks about before its history is whole: it joined capture later
    (or was re-synced alone) and was read by an online snapshot (silver.whole_from(), from the engine's watermarks)."""
    asked = earliest_instants(sql_text)
    if not asked or not (params is None or isinstance(params, Mapping)) or not conn.execute("select to_regprocedure('silver.whole_from()') is not null").fetchone()[0]:
        return []
    messages = []
    for table, instant in asked:
        try:
            row = conn.execute(f"select w.model, w.complete_from, ({instant})::timestamptz from silver.whole_from() "
                               "as w where split_part(w.model, '.', 2) = %(medallion_table)s and w.complete_from > "
                               f"({instant})::timestamptz", {**(params or {}), "medallion_table": table}).fetchone()
        except psycopg.Error:
            conn.rollback()  # the query itself will say what is wrong with it
            return []
        if row is not None:
            messages.append(f"the answer may be incomplete: it asks about {row[2].isoformat(sep=' ')}, but the history of "
                            f"{row[0]} is whole only from {row[1].isoformat(sep=' ')} (the table joined capture then: "
                            "its earlier rows were read by an online snapshot, their earlier versions are not known)")
    if strict and messages:
        raise HorizonExceeded(messages[0])
    return messages


def explain_query(settings: Settings | Context, sql_text: str, known_at_text: str | None = None) -> str:
    """The rewritten statement, formatted; tables are checked against the warehouse but nothing runs."""
    with _warehouse(settings) as conn:
        known = known_at(known_at_text)
        _check_instant(conn, known, known_at_text)
        text = explain(sql_text, load_catalog(conn), known)
        conn.rollback()
    return text


def _failure(exc: psycopg.Error) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    hint = f" ({diag.message_hint})" if diag.message_hint else ""
    return f"the warehouse rejected the query: {message}{hint}; 'medallion query --explain' shows the SQL that ran"
