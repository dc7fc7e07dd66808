"""Snapshot rows in the stream's value forms, so an R row and an I row of the same values look alike.

pgoutput sends every value as its type's text output; wal2json writes numbers as JSON numbers,
booleans as true/false, bytea as bare hex and everything else as the text output. row_values
is the select list of a row for row_to_json, in those forms: the initial snapshot's chunks and
the online snapshot's. tests/test_bronze_snapshot.py checks them against the stream's forms
computed another way (to_jsonb per column), on types whose text forms differ.
"""

from __future__ import annotations

import re

from psycopg import sql

# Snapshot rows take the stream's value forms, so R and I rows of the same values look alike.
# pgoutput sends every value as its type's text output. wal2json writes these types as JSON
# numbers (booleans as true/false, bytea as bare hex), everything else as the text output.
NUMBER_TYPES = {"smallint", "integer", "bigint", "oid", "real", "double precision"}
BOOL_TYPE = "boolean"
# Types whose cast to text is their output function (a cast through I/O): `c::text` is what
# pgoutput sends, and cheaper than format('%s', c). Not bool ('true' for t), char(n) (trailing
# blanks dropped), inet/cidr (the mask always shown), name, xml, domains or user types: those
# take format('%s', c), which calls the output function whatever the type.
IO_TEXT_TYPES = {"smallint", "integer", "bigint", "numeric", "real", "double precision", "text",
                 "character varying", "timestamp with time zone", "timestamp without time zone", "date",
                 "time without time zone", "time with time zone", "interval", "uuid", "json", "jsonb", "bytea",
                 "tsvector", "money", "oid"}

def _bare_type(declared: str) -> str:
    """'timestamp(3) with time zone' -> 'timestamp with time zone'; 'numeric(5,2)' -> 'numeric'."""
    return re.sub(r"\(.*?\)", "", declared).strip()


def _row_value(column: str, declared_type: str, plugin: str) -> sql.Composable:
    """One column of t in the plugin's form, as row_to_json writes it: a text value is a JSON
    string, a number a JSON number, a boolean true/false, null null."""
    c = sql.Identifier("t", column)
    bare = _bare_type(declared_type)
    if plugin == "pgoutput":
        if bare in IO_TEXT_TYPES or bare.endswith("[]"):  # an array's cast to text is array_out
            return sql.SQL("{}::text").format(c)
        return sql.SQL("case when {c} is null then null else format('%s', {c}) end").format(c=c)
    base = declared_type.split("(")[0]
    if base in {"real", "double precision", "numeric"}:
        return sql.SQL("case when {c} in ('NaN', 'Infinity', '-Infinity') then null else {c} end").format(c=c)
    if base in NUMBER_TYPES or declared_type == BOOL_TYPE:
        return c  # row_to_json: numbers as numbers (oid as a string, as to_jsonb), booleans true/false
    if declared_type == "bytea":
        return sql.SQL("encode({}, 'hex')").format(c)
    return sql.SQL("{}::text").format(c)


def row_values(columns: list[tuple[str, str]], plugin: str) -> sql.Composable:
    """The select list of the lateral row a snapshot row's JSON is made of: each column of t,
    in the plugin's value form, under its own name."""
    if not columns:
        return sql.SQL("")
    return sql.SQL(", ").join(sql.SQL("{} as {}").format(_row_value(name, type_, plugin), sql.Identifier(name))
                              for name, type_ in columns)
