"""Asset keys for any table name: Dagster accepts only [A-Za-z0-9_] in a key's parts (it builds op
input names from them), while a table may be called "Order Line", "Kunde ü" or 63 bytes of anything.

A name Dagster accepts is its own key; any other becomes a deterministic slug with a hash of the
whole name (two names that slug alike stay distinct, and a reload gives the same key). The real
name is kept beside the key, in the asset's description and its `relation` metadata.
"""

from __future__ import annotations

import re

from medallion.naming import short_hash

_VALID = re.compile(r"^[A-Za-z0-9_]+$")
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")
# long keys make long op and input names in Dagster's UI and logs; cut well below any limit
MAX_KEY_PART = 80


def key_part(name: str) -> str:
    """name itself when Dagster accepts it, else an ASCII slug of it + '_' + a hash of the whole name."""
    if _VALID.match(name) and len(name) <= MAX_KEY_PART:
        return name
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")[:MAX_KEY_PART - 9] or "t"
    return f"{slug}_{short_hash(name)}"


def quoted(name: str) -> str:
    """An identifier as SQL reads it: bare when plain, else double-quoted."""
    return name if _PLAIN.match(name) else '"' + name.replace('"', '""') + '"'


def relation(schema: str, name: str) -> str:
    """schema.name as a user types it in SQL: silver."app__Order Line_hist"."""
    return f"{quoted(schema)}.{quoted(name)}"
