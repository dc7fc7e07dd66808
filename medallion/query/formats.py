"""Machine-readable renderings of a query result (the CLI's --format csv and json)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from medallion.query.run import QueryResult


def display(value: Any) -> Any:
    """Instants as ISO text, with PostgreSQL's infinity for an open version's end."""
    if isinstance(value, (datetime, date)):
        bare = value.replace(tzinfo=None) if isinstance(value, datetime) else value
        if bare in (datetime.max, date.max):
            return "infinity"
        if bare in (datetime.min, date.min):
            return "-infinity"
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    return value


def _plain(value: Any) -> Any:
    """JSON has no instants, amounts or intervals: ISO text for times, numbers for amounts."""
    if isinstance(value, (datetime, date, time)):
        return display(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return str(value)


def to_json(result: QueryResult) -> str:
    """One JSON array of objects keyed by column name; a duplicate column name keeps its last value: alias it."""
    records = [dict(zip(result.columns, row)) for row in result.rows]
    return json.dumps(records, default=_plain, ensure_ascii=False, indent=2)


def to_csv(result: QueryResult) -> str:
    """RFC 4180 CSV with a header row; NULL is an empty field (as COPY ... CSV writes it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if value is None else display(value) for value in row])
    return buffer.getvalue()
