"""schema.table names and globs, as medallion.toml and `medallion tables` write them.

Names are matched as the source's catalog stores them (case-sensitive, no folding). A part that
contains a dot or a double quote is written in double quotes, as in SQL ("my.schema"."Order
Items"); a quoted part is literal, an unquoted one may use the globs * ? and [...].
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase


def _split(text: str) -> list[tuple[str, bool]]:
    """'a."b.c"' -> [('a', False), ('b.c', True)]: the dot-separated parts, each with whether it was quoted."""
    parts: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            j, chars = i + 1, []
            while True:
                if j >= n:
                    raise ValueError(f"{text!r} has an unclosed double quote")
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        chars.append('"')
                        j += 2
                        continue
                    break
                chars.append(text[j])
                j += 1
            parts.append(("".join(chars), True))
            i = j + 1
        else:
            j = text.find(".", i)
            j = n if j < 0 else j
            if '"' in text[i:j]:
                raise ValueError(f"{text!r}: a double quote may only enclose a whole name")
            parts.append((text[i:j], False))
            i = j
        if i >= n:
            return parts
        if text[i] != ".":
            raise ValueError(f"{text!r}: expected a dot after the quoted name")
        i += 1
        if i == n:
            parts.append(("", False))
            return parts


def _two_parts(text: str) -> tuple[tuple[str, bool], tuple[str, bool]]:
    text = text.strip()
    parts = _split(text)
    if len(parts) == 1:
        raise ValueError(f"{text!r} names no schema: write schema.table, e.g. public.{text or 'orders'}")
    if len(parts) > 2:
        raise ValueError(f'{text!r} has more than one dot: quote a name that contains one, e.g. "my.schema".orders')
    if not parts[0][0] or not parts[1][0]:
        raise ValueError(f"{text!r} has an empty schema or table name")
    return parts[0], parts[1]


def parse_qualified_name(text: str) -> tuple[str, str]:
    """'public.customer' -> ('public', 'customer'); no globs."""
    (schema, _), (table, _) = _two_parts(text)
    return schema, table


def _check_glob(part: str, text: str) -> None:
    depth = 0
    for ch in part:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
    if depth:
        raise ValueError(f"{text!r} has an unclosed '[' in a glob")


def _literal(part: str) -> str:
    # fnmatch has no escape character: a literal glob character becomes a one-character set
    return re.sub(r"([*?\[])", r"[\1]", part)


@dataclass(frozen=True)
class TablePattern:
    """One include/exclude entry: a glob for the schema and one for the table."""

    text: str
    schema: str
    table: str

    @classmethod
    def parse(cls, text: str) -> TablePattern:
        (schema, schema_quoted), (table, table_quoted) = _two_parts(text)
        for part, quoted in ((schema, schema_quoted), (table, table_quoted)):
            if not quoted:
                _check_glob(part, text)
        return cls(text=text.strip(),
                   schema=_literal(schema) if schema_quoted else schema,
                   table=_literal(table) if table_quoted else table)

    def matches(self, schema: str, table: str) -> bool:
        return fnmatchcase(schema, self.schema) and fnmatchcase(table, self.table)


def display(schema: str, table: str) -> str:
    """schema.table for messages and medallion.toml: parts quoted only when they need it."""
    def part(name: str) -> str:
        return f'"{name.replace(chr(34), chr(34) * 2)}"' if ("." in name or '"' in name or not name) else name
    return f"{part(schema)}.{part(table)}"
