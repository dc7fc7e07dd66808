"""Unchanged large values: an UPDATE's row completed from the row's previous version in bronze.

PostgreSQL does not repeat an unchanged TOASTed value (a large text, bytea, jsonb ...) in an
UPDATE's WAL record. With REPLICA IDENTITY FULL the old row is in the record and the decoders
fill the gap from it (medallion.bronze.decoders, .rows). Without FULL (PostgreSQL's default
for a table created later, or a source whose owner keeps its identities) the value is simply
absent, and silver would read NULL. It is filled here, at ingest, from the row's previous
version, which bronze always has: the snapshot's R row, an epoch's R row after a re-sync, or
an earlier change, found in stream order (the same transaction first, then transactions not
yet written, then bronze itself).

Why at ingest and not in silver: bronze's full_row has always been the complete row (the
decoders complete it from the old row under FULL), and everything downstream relies on that:
the PostgreSQL and Spark histories, the partitioned current tables, the replay tests, the lake
export. Completing it once, where the change is read, keeps one source of truth for "the row
after this change" instead of a fill in every consumer. What bronze stores is still only what
the source held: each filled value is the value the source had and did not rewrite.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import psycopg
from psycopg import sql

from medallion.naming import object_prefix

ROW_OPS = ("R", "I", "U")  # rows that carry the whole row after them


def key_text(value: object) -> str | None:
    """A JSON value as `->>` gives it in the warehouse (so pgoutput's "1" and wal2json's 1 agree)."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode("utf-8")


def key_of(row: dict, key: tuple[str, ...]) -> tuple[str | None, ...]:
    return tuple(key_text(row.get(k)) for k in key)


def missing_columns(row: dict, columns: Iterable[str]) -> list[str]:
    """The columns an UPDATE's new row lacks: unchanged TOASTed values (wal2json omits them)."""
    return [c for c in columns if c not in row]


@dataclass
class Versions:
    """Where each row's latest change is among one transaction's changes still in memory: a
    lookup is a dict access, not a scan, so a transaction of many partial updates stays linear.
    The index is built on the first lookup in the transaction and extended on each later one (each
    row parsed once, and only in a transaction that needs it: most never do, and parsing every
    row's JSON for its key cost ~15% of the reader's time). Which bronze tables had rows spilled
    (medallion.bronze.spill, which indexes its files the same way) is kept here."""

    latest: dict[tuple[str, tuple], int] = field(default_factory=dict)  # (target, key) -> index in rows[target]
    truncated: dict[str, int] = field(default_factory=dict)  # target -> index of its last truncate
    indexed: dict[str, int] = field(default_factory=dict)  # target -> rows of rows[target] indexed so far
    spilled: set[str] = field(default_factory=set)  # targets with rows in the spill

    def _catch_up(self, rows: list[tuple], target: str, key: tuple[str, ...]) -> None:
        for index in range(self.indexed.get(target, 0), len(rows)):
            _ordinal, _lsn, op, full_row, _old, _table = rows[index]
            if op == "T":
                self.truncated[target] = index
            elif full_row is not None:
                self.latest[(target, key_of(orjson.loads(full_row), key))] = index
        self.indexed[target] = len(rows)

    def spill(self, targets: Iterable[str]) -> None:
        """The rows in memory moved to the spill: forget their places."""
        self.spilled.update(targets)
        self.latest, self.truncated, self.indexed = {}, {}, {}

    def find(self, rows: list[tuple], target: str, key: tuple[str, ...], wanted: tuple) -> tuple[bool, dict | None]:
        """(found, the row) among the rows still in memory: found with None when the row was
        deleted or truncated there (nothing earlier may be used)."""
        self._catch_up(rows, target, key)
        index = self.latest.get((target, wanted))
        cut = self.truncated.get(target)
        if cut is not None and (index is None or cut > index):
            return True, None
        if index is None:
            return False, None
        _ordinal, _lsn, op, full_row, _old, _table = rows[index]
        return True, (orjson.loads(full_row) if op in ROW_OPS else None)

    def maybe_spilled(self, target: str) -> bool:
        return target in self.spilled


def in_bronze(conn: psycopg.Connection, target: str, key: tuple[str, ...],
              wanted: tuple[str | None, ...], commit: bool = True) -> dict | None:
    """The newest version of the row in bronze.<target>, by an index on its key (made on first use).
    commit=False leaves the caller's warehouse transaction open (an early write, medallion.bronze.early)."""
    table = sql.Identifier("bronze", target)
    exprs = sql.SQL(", ").join(sql.SQL("(full_row ->> {})").format(sql.Literal(k)) for k in key)
    conn.execute(sql.SQL("create index if not exists {} on {} ({}, commit_lsn, ordinal)").format(
        sql.Identifier(object_prefix(target, len("_row_key")) + "_row_key"), table, exprs))
    if commit:
        conn.commit()
    match = sql.SQL(" and ").join(sql.SQL("(full_row ->> {}) = {}").format(sql.Literal(k), sql.Placeholder())
                                  for k in key)
    found = conn.execute(sql.SQL("select op, full_row::text from {} where {} and op <> 'E' "
                                 "order by commit_lsn desc, ordinal desc limit 1").format(table, match),
                         list(wanted)).fetchone()
    if commit:
        conn.commit()
    return orjson.loads(found[1]) if found and found[0] in ROW_OPS else None


def complete(row: dict, missing: list[str], previous: dict) -> str:
    """The row with its missing columns taken from the previous version, as bronze's JSON text."""
    for column in missing:
        if column in previous:
            row[column] = previous[column]
    return orjson.dumps(row).decode("utf-8")
