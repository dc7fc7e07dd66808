"""The names medallion gives things in the warehouse, derived from source names.

bronze.br_<table>_cdc and silver.<table>_hist / silver.<table> / silver.<table>_as_of(ts) for
tables in public; <schema>__<table> in place of <table> for other schemas. Any name the source
allows is kept as it is (mixed case, spaces, dots, non-ASCII) and always quoted when used, except
a double quote, which becomes '_' in bronze and silver names: dbt renders a relation as "name"
without doubling a quote inside it, so a name holding one broke every statement that named it.
PostgreSQL cuts identifiers at 63 bytes, silently: a name that would be longer is shortened
here, deterministically, with a hash of the whole name so that two long names stay distinct.
"""

from __future__ import annotations

import hashlib
import re

MAX_IDENTIFIER_BYTES = 63
# the longest suffix silver appends to a base name: <base>_as_of, <base>_hist
SILVER_SUFFIX_BYTES = len("_as_of")
_SAFE = re.compile(r"^[a-z_][a-z0-9_]*$")


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()[:length]


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of text that fits in max_bytes of UTF-8 (never half a character)."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def fit(name: str, max_bytes: int = MAX_IDENTIFIER_BYTES) -> str:
    """name itself when it fits, else a prefix + '_' + a hash of the whole name."""
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    return _cut(name, max_bytes - 9) + "_" + short_hash(name)


def table_stem(schema: str, table: str) -> str:
    """<table> for public, <schema>__<table> otherwise."""
    return table if schema == "public" else f"{schema}__{table}"


def bronze_table(schema: str, table: str) -> str:
    """br_<stem>_cdc, shortened to fit when needed."""
    stem = table_stem(schema, table)
    full = f"br_{stem}_cdc"
    if len(full.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        full = f"br_{fit(stem, MAX_IDENTIFIER_BYTES - 7)}_cdc"
    return without_quotes(full)


def without_quotes(name: str) -> str:
    """name with each double quote as '_' (see the module's docstring)."""
    return name.replace('"', "_")


def silver_base(schema: str, table: str, configured: str | None = None) -> str:
    """The silver base name: medallion.toml's `silver`, or the table's stem; room kept for suffixes."""
    return without_quotes(fit(configured or table_stem(schema, table), MAX_IDENTIFIER_BYTES - SILVER_SUFFIX_BYTES))


def object_prefix(relation: str, reserve: int = len("_one_current")) -> str:
    """A prefix for a relation's constraints and indexes (<prefix>_pkey, ...): index names share
    the schema's namespace, so a cut name must not collide with another relation's."""
    return fit(relation, MAX_IDENTIFIER_BYTES - reserve)


def model_name(relation: str, taken: set[str]) -> str:
    """A dbt model name for a relation: the relation name when it is a plain lower-case
    identifier, else a slug of it with a hash (the relation keeps its real name as the alias)."""
    if _SAFE.match(relation) and relation not in taken:
        return relation
    slug = re.sub(r"[^a-z0-9_]+", "_", relation.lower()).strip("_") or "t"
    if not re.match(r"^[a-z_]", slug):
        slug = "t_" + slug
    return f"{slug[:40]}_{short_hash(relation, 6)}"
