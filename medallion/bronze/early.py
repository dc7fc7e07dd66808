"""A large transaction written into bronze while it streams: its commit position, found early.

With pgoutput's protocol version 1 the server decodes a transaction only once its commit is in
the WAL, and sends it whole, never interleaved with another, in commit order. So once an open
transaction outgrows the memory budget, everything before it can be committed to bronze and
its rows COPYed straight into their bronze tables in one open warehouse transaction, which
commits with the new position at its Commit: the COPY runs while the rest streams, instead of
after it.

What bronze's rows need and Begin does not carry is their commit_lsn: the END of the commit
record (Commit's end_lsn, the position both plugins agree on and the slot is confirmed to).
Begin carries the record's START (final_lsn); the end is that plus the record's length (and a
page header when it crosses a WAL page). The length is read from the WAL itself when the role
may (pg_read_binary_file of the segment: the record header's first 4 bytes; the commit record
is on disk, as the server decodes only flushed WAL): exact, subtransactions included. Without
that right it is GUESSED from the lengths seen in this stream: 48 bytes for a plain
transaction (PostgreSQL 15), more with subtransactions or invalidations (measured: 56, 72, and
1,392 for a DDL under the event trigger), so a transaction with savepoints, like `medallion
scale`'s, is missed. Either way the end is CHECKED at the Commit: right, the open warehouse
transaction commits; wrong, it is rolled back and the transaction is written from its spill
files as if nothing had been tried (medallion.bronze.spill). A wrong guess costs time, never a
change; a crash rolls the open warehouse transaction back and the server sends it again.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable

import psycopg

from medallion.db import sql_text

WAL_PAGE = 8192  # XLOG_BLCKSZ, PostgreSQL's default (another value only makes guesses miss)
WAL_SEGMENT = 16 * 2**20  # the default wal_segment_size: a long page header at its start
SHORT_HEADER, LONG_HEADER = 24, 40  # SizeOfXLogShortPHD, SizeOfXLogLongPHD (MAXALIGNed)
PLAIN_COMMIT = 48  # a commit record without subtransactions or invalidations, end - start


class CommitGuess:
    """The end of a transaction's commit record from its start: read from the WAL through src
    when the role may, else by the lengths seen so far."""

    def __init__(self, src: psycopg.Connection | None = None, say: Callable[[str], None] = lambda _: None) -> None:
        self.src = src  # the source, autocommit
        self.say = say
        self.lengths: Counter[int] = Counter({PLAIN_COMMIT: 1})  # a prior: a few DDL commits do not outvote it

    def learn(self, final_lsn: int | None, end_lsn: int) -> None:
        """A commit seen: how long its record was (page headers taken out)."""
        if final_lsn is None or end_lsn <= final_lsn:
            return
        length = end_lsn - final_lsn - _headers(final_lsn, end_lsn)
        if 0 < length < WAL_PAGE:
            self.lengths[length] += 1

    def end(self, final_lsn: int) -> int:
        """The end of the commit record that starts at final_lsn: exact when read, else likeliest."""
        length = self._read_length(final_lsn)
        if length is None:
            length = min(self.lengths, key=lambda n: (-self.lengths[n], n))  # the most common; the shortest of a tie
        end = final_lsn + length
        end += _headers(final_lsn, end)
        return (end + 7) & ~7  # the next record starts 8-byte aligned: that is the end the Commit gives

    def _read_length(self, lsn: int) -> int | None:
        if self.src is None:
            return None
        try:
            raw = self.src.execute(sql_text("medallion.bronze", "wal_record_length.sql"),
                                   {"lsn": f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"}).fetchone()[0]
        except psycopg.Error as exc:
            self.src = None  # not allowed (or not a primary): guess from now on
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.say(f"a large transaction's commit position is guessed, not read from the WAL ({reason}): "
                     "grant pg_read_server_files to the capture role to write every large transaction while "
                     "it streams")
            return None
        length = int.from_bytes(bytes(raw), sys.byteorder) if raw is not None and len(raw) == 4 else 0
        return length if 24 <= length < WAL_SEGMENT else None


def _headers(start: int, end: int) -> int:
    """The page headers between start and end (the pages a record crossing them begins)."""
    total = 0
    page = (start // WAL_PAGE + 1) * WAL_PAGE
    while page < end:
        header = LONG_HEADER if page % WAL_SEGMENT == 0 else SHORT_HEADER
        total += header
        end += header
        page += WAL_PAGE
    return total
