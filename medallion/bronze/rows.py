"""One wal2json change -> one bronze row: op, full_row and old_row as flat JSON text.

wal2json lists columns as [{"name": ..., "value": ...}]; bronze keeps {column: value}. The
reshaping happens here rather than in the warehouse (jsonb_array_elements + jsonb_object_agg
per row cost more there). Numbers keep their exact value: integers are Python ints, and any
other number (3.50) is kept as its own text and written back unchanged, never through float.
"""

from __future__ import annotations

import json

_encode_text = json.JSONEncoder(ensure_ascii=False).encode


class _Number(str):
    """The text of a JSON number, kept verbatim."""

    __slots__ = ()


def _value(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is str:
        return _encode_text(value)
    return str(value)  # an int (exact in Python) or a _Number (the number's own text)


def _columns(columns: list[dict]) -> dict[str, str]:
    """name -> the value's JSON text."""
    return {column["name"]: _value(column["value"]) for column in columns}


def _object(columns: dict[str, str]) -> str:
    return "{" + ",".join(f"{_encode_text(name)}:{text}" for name, text in columns.items()) + "}"


def bronze_row(data: str) -> tuple[str, str | None, str | None]:
    """(op, full_row, old_row) of one wal2json format-version 2 change.

    full_row is the new row for I/U, the old row for D, None for T. An UPDATE omits unchanged
    TOASTed columns from its new row: they are taken from the old row (replica identity FULL),
    so full_row is always the complete row. old_row is the row before an update."""
    change = json.loads(data, parse_float=_Number)
    op = change["action"]
    if op == "T":
        return op, None, None
    identity = change.get("identity")
    old = _columns(identity) if identity else None
    if op == "D":
        return op, _object(old or {}), None
    new = _columns(change["columns"])
    if old:
        new = {**old, **new}
    return op, _object(new), _object(old) if op == "U" and old else None
