"""Where captured changes land: the small interface the ingest loop writes through.

The loop (medallion.bronze.ingest) gathers whole source transactions and hands them over; a
destination writes them. Bronze in PostgreSQL (medallion.bronze.postgres_destination) is the
first; another (a lake's tables) implements the same few calls:

    snapshot_rows  one chunk of a table's snapshot rows (the initial snapshot)
    spill          an open transaction's changes parked before its commit (memory stays bounded;
                   PostgreSQL's: local files, medallion.bronze.spill)
    write          committed transactions with the new position, atomically; a transaction's
                   spilled changes move to their tables here, so each is written once
    caught_up      the horizon: everything the source committed before it is written
    spilled_version / stored_version   a row's newest earlier version (an UPDATE's unchanged
                   large values are taken from it, medallion.bronze.unchanged)

Exactly-once rests on write(): its transactions and position land together or not at all, and
transactions at or below the recorded position are skipped (re-delivered after a crash).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from medallion.bronze import unchanged
from medallion.source.catalog import SourceTable


class CapturedRow(NamedTuple):
    """One captured change as a transaction holds it, until it is written."""

    ordinal: int  # its place in the source transaction, counting every row change
    lsn: int
    op: str
    full_row: str | None
    old_row: str | None
    source_table: str  # the relation it was made in (a partition, for a partitioned table)


class SchemaEvent(NamedTuple):
    """A table's schema recorded at a place in a transaction (DDL, a rename, a drop, observed)."""

    bronze: str
    ordinal: int
    event: str  # create, alter, drop, rename, observed
    table: SourceTable  # the table's schema after it (its last one for a drop)
    new: bool  # the bronze table is new: it is created with this record


@dataclass
class Transaction:
    """One source transaction as it arrives: its captured changes by bronze table."""

    xid: int | None
    commit_ts: object = None
    commit_lsn: int = 0
    ordinal: int = 0  # counts every row change, captured or not
    rows: dict[str, list[CapturedRow]] = field(default_factory=dict)  # bronze table -> its changes
    in_memory: int = 0
    bytes: int = 0  # row text held in memory (approximately what the rows cost)
    spilled: set[str] = field(default_factory=set)  # bronze tables with rows spilled (Destination.spill)
    changes: int = 0  # captured, in memory and spilled
    schema_events: list[SchemaEvent] = field(default_factory=list)
    snapshot_marks: list[tuple] = field(default_factory=list)  # online snapshot progress (online_snapshot.py)
    redelivered: bool = False  # already in bronze (known at its commit): no source of earlier versions
    final_lsn: int | None = None  # pgoutput's Begin: where the commit record starts (medallion.bronze.early)
    early: tuple[int, object] | None = None  # (guessed commit_lsn, commit time) its spills were written under
    versions: unchanged.Versions = field(default_factory=unchanged.Versions)  # for unchanged large values

    @property
    def targets(self) -> set[str]:
        """The bronze tables it changes, in memory or spilled."""
        return {*self.rows, *self.spilled}


@dataclass(frozen=True)
class Batch:
    """Committed transactions in commit order, with what is recorded beside them."""

    transactions: list[Transaction]
    new_tables: dict[str, SourceTable]  # bronze table -> a table first captured in these transactions
    left_out: dict[int, SourceTable]  # oid -> a table seen and not captured, to remember


@dataclass
class BatchResult:
    transactions: int = 0
    changes: int = 0
    skipped_transactions: int = 0  # already written (re-delivered after a crash)
    last_commit_lsn: str | None = None
    last_commit_ts: str | None = None
    seconds: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)  # changes written, by bronze table (metrics)


# the columns of a snapshot chunk's COPY text, in order (snapshot rows have no old row)
# load_ts is given, not defaulted: every row of one snapshot is known from one time, however many
# warehouse transactions its chunks took (silver's sys_known_from; "as known at" on gold joins them)
SNAPSHOT_COLUMNS = ("commit_lsn", "ordinal", "lsn", "xid", "op", "full_row", "source_table", "commit_ts", "load_ts")


class Destination(Protocol):
    """What the ingest loop writes through (see the module's docstring). Called from one thread."""

    def snapshot_rows(self, bronze: str, blocks: Iterable[bytes]) -> int:
        """Write one chunk of a table's snapshot rows, COPY text of SNAPSHOT_COLUMNS; returns the rows."""

    def spill(self, xid: int | None, rows: dict[str, list[CapturedRow]],
              early: tuple[int, object] | None = None) -> None:
        """Park rows of an open transaction; with early = (its commit_lsn as guessed, its commit
        time), the destination may also write them now, keeping that write open until the batch
        holding the commit confirms the guess (medallion.bronze.early)."""

    def write(self, batch: Batch) -> BatchResult: ...

    def caught_up(self, at: datetime) -> None: ...

    def discard_spill(self) -> None:
        """Forget spilled changes of transactions that never committed (the server sends them again)."""

    def spilled_version(self, xid: int | None, bronze: str, key: tuple[str, ...],
                        wanted: tuple[str | None, ...]) -> tuple[bool, dict | None]:
        """(found, the row): the row's newest version among a transaction's spilled changes;
        found with None when it was deleted or truncated there."""

    def stored_version(self, bronze: str, key: tuple[str, ...], wanted: tuple[str | None, ...]) -> dict | None: ...
