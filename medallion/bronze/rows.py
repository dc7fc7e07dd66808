"""One wal2json change -> one bronze row: op, full_row and old_row as flat JSON text.

wal2json (format-version 2, include-types off) lists columns as
[{"name":"a","value":1},{"name":"b","value":"x"}]; bronze keeps {"a":1,"b":"x"}. The reshaping
is done on the text, without parsing JSON: a JSON string cannot contain an unescaped quote, so
the separators '{"name":', '},{"name":' and ',"value":' only ever occur as structure. Values are
copied byte for byte: numbers keep their exact text (3.50 stays 3.50) and strings their escapes.
This is several times cheaper than parsing and re-encoding each change in Python, and than
jsonb_array_elements + jsonb_object_agg in the warehouse.

An UPDATE omits unchanged TOASTed columns from its new row. With replica identity FULL the old
row is in the change ("identity"): full_row lists the old row's pairs first and the new row's
after them, and jsonb keeps the last value of a duplicated key, so full_row is the complete new
row once the warehouse stores it.
"""

from __future__ import annotations

_COLUMNS = ',"columns":'
_IDENTITY = ',"identity":'
_FIRST = '[{"name":'
_NEXT = '},{"name":'
_VALUE = ',"value":'


def _pairs(array: str) -> str:
    """'[{"name":"a","value":1},...]' -> '"a":1,...' (an empty array gives '')."""
    if array == "[]":
        return ""
    inner = array[len(_FIRST):-2]
    # one ',"value":' per column: anything else is not the compact form this relies on
    if not (array.startswith(_FIRST) and array.endswith("}]")) or inner.count(_VALUE) != inner.count(_NEXT) + 1:
        raise ValueError(f"unexpected wal2json column list: {array[:80]!r}")
    return inner.replace(_NEXT, ",").replace(_VALUE, ":")


def _arrays(data: str) -> tuple[str | None, str | None]:
    """The "columns" and "identity" arrays of a change, as text (None when absent)."""
    end = len(data) - 1  # the closing brace of the change
    identity_at = data.find(_IDENTITY)
    columns_at = data.find(_COLUMNS)
    identity = data[identity_at + len(_IDENTITY):end] if identity_at >= 0 else None
    if columns_at < 0:
        return None, identity
    columns_end = identity_at if identity_at >= 0 else end
    return data[columns_at + len(_COLUMNS):columns_end], identity


def bronze_row(data: str, op: str) -> tuple[str | None, str | None]:
    """(full_row, old_row) of one change whose action is op (I, U, D or T).

    full_row is the new row for I/U, the old row for D, None for T; old_row is the row before
    an update (when the change carries it)."""
    if op == "T":
        return None, None
    columns, identity = _arrays(data)
    old = _pairs(identity) if identity is not None else None
    if op == "D":
        return "{" + (old or "") + "}", None
    if columns is None:
        raise ValueError(f"{op} change without columns: {data[:80]!r}")
    new = _pairs(columns)
    if old:
        both = f"{old},{new}" if new else old
        return "{" + both + "}", ("{" + old + "}" if op == "U" else None)
    return "{" + new + "}", None
