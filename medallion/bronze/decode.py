"""wal2json format-version 2 rows -> whole source transactions of captured changes.

A change's identity is (commit position, ordinal within its transaction): COPY writes many
rows at one LSN, so the change LSN alone is not unique. The ordinal counts every row change
of the transaction, captured or not, so it does not depend on which tables are captured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

ROW_ACTIONS = frozenset("IUDT")
_PREFIX = '{"action":"'
_RELATION = re.compile(r'"schema":"((?:[^"\\]|\\.)*)","table":"((?:[^"\\]|\\.)*)"')
_TIMESTAMP = re.compile(r'"timestamp":"([^"]+)"')

# (schema, table) of a change -> (the bronze table it lands in, the relation's qualified name as
# format('%I.%I') gives it), or None when it is not captured.
Resolver = Callable[[str, str], "tuple[str, str] | None"]


@dataclass(frozen=True)
class Change:
    ordinal: int
    lsn: int
    target: str  # bronze table name
    source_table: str  # the relation the change was made to (a leaf partition, maybe), quoted as needed
    op: str  # I, U, D or T
    data: str  # the wal2json object, verbatim


@dataclass
class Transaction:
    xid: int
    commit_lsn: int = 0
    commit_ts: str = ""
    changes: list[Change] = field(default_factory=list)
    row_changes: int = 0


def _unescape(name: str) -> str:
    return json.loads(f'"{name}"') if "\\" in name else name


def transactions(rows: Iterable[tuple[int, int, str]], resolve: Resolver) -> Iterator[Transaction]:
    """Group peeked (lsn, xid, data) rows into committed transactions, in commit order.

    The commit position is the LSN the peek reports for the commit row: the end of the commit
    record, which is also what the slot is advanced to once the transaction is in bronze."""
    current: Transaction | None = None
    for lsn, xid, data in rows:
        if not data.startswith(_PREFIX):
            raise ValueError(f"not wal2json format-version 2 output at LSN {lsn}: {data[:80]!r}")
        action = data[len(_PREFIX)]
        if action == "B":
            current = Transaction(xid=xid)
        elif action in ROW_ACTIONS:
            if current is None:
                raise ValueError(f"row change outside a transaction at LSN {lsn}")
            current.row_changes += 1
            match = _RELATION.search(data)
            if match is None:
                raise ValueError(f"change without schema/table at LSN {lsn}")
            schema, table = _unescape(match.group(1)), _unescape(match.group(2))
            resolved = resolve(schema, table)
            if resolved is not None:
                current.changes.append(
                    Change(current.row_changes, lsn, resolved[0], resolved[1], action, data))
        elif action == "C":
            if current is None:
                raise ValueError(f"commit without begin at LSN {lsn}")
            stamp = _TIMESTAMP.search(data)
            if stamp is None:
                raise ValueError(f"commit without timestamp at LSN {lsn}: enable include-timestamp")
            current.commit_lsn = lsn
            current.commit_ts = stamp.group(1)
            yield current
            current = None
        # "M" (logical messages) carry no row data and are skipped.


def lsn_to_int(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def int_to_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
