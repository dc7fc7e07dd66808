"""What the two output plugins' messages become: one stream of named capture events, in order.

The decoders (medallion.bronze.decoders) turn pgoutput's and wal2json's messages into these;
the ingest loop (medallion.bronze.ingest) reads them by type, never by position, so the two
plugins cannot drift apart in what a field means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Union

if TYPE_CHECKING:
    from medallion.bronze.pgoutput import Relation


@dataclass(frozen=True)
class RelationRef:
    """How a change names its relation: the OID when the plugin sends one (pgoutput) and the name."""

    oid: int | None
    schema: str
    table: str


class Begin(NamedTuple):
    """A transaction begins (wal2json sends no commit time here: the commit carries it).

    final_lsn (pgoutput): the START of the commit record; bronze's commit_lsn is its END, known
    only at the Commit (medallion.bronze.early guesses it to write a large transaction early)."""

    xid: int | None
    commit_ts: object
    final_lsn: int | None = None


class Change(NamedTuple):
    """A row change, op I, U, D or T; full_row and old_row are bronze's flat JSON objects as text
    ({"column": value}); both None for a truncate (one event per truncated table).

    missing (pgoutput's U only): the columns whose unchanged TOASTed value the WAL did not repeat
    and no old row filled (medallion.bronze.unchanged completes them); old_row is then the old
    key when the key changed."""

    relation: RelationRef
    op: str
    full_row: str | None
    old_row: str | None
    lsn: int
    missing: tuple[str, ...] | None = None


class Commit(NamedTuple):
    """The transaction commits: commit_lsn is the end of its commit record (both plugins agree,
    and it is what the slot is confirmed to)."""

    commit_lsn: int
    commit_ts: object


class RelationSeen(NamedTuple):
    """pgoutput: the columns of a relation, sent before its changes."""

    relation: Relation


class Message(NamedTuple):
    """A transactional logical message (e.g. the DDL trigger's, an online snapshot's watermark)."""

    prefix: str | None
    content: bytes | str


Event = Union[Begin, Change, Commit, RelationSeen, Message]
