"""A large transaction written into bronze while it streams: its commit position, guessed.

With pgoutput's protocol version 1 the server decodes a transaction only once its commit is in
the WAL, and sends it whole, never interleaved with another, in commit order. So once an open
transaction outgrows the memory budget, everything before it can be committed to bronze and
its rows COPYed straight into their bronze tables in one open warehouse transaction, which
commits with the new position at its Commit: the COPY runs while the rest streams, instead of
after it.

What bronze's rows need and Begin does not carry is their commit_lsn: the END of the commit
record (Commit's end_lsn, the position both plugins agree on and the slot is confirmed to).
Begin carries the record's START (final_lsn). The record's length is that of a commit record:
48 bytes for a plain transaction (PostgreSQL 15), more with subtransactions or invalidations
(measured: 56, 72, and 1,392 for a DDL under the event trigger), plus a page header when it
crosses a WAL page. So the end is GUESSED from the
lengths seen in this stream, and the guess is CHECKED at the Commit: right, the open warehouse
transaction commits; wrong, it is rolled back and the transaction is written from its spill
files as if nothing had been tried (medallion.bronze.spill). A wrong guess costs time, never a
change; a crash rolls the open warehouse transaction back and the server sends it again.
"""

from __future__ import annotations

from collections import Counter

WAL_PAGE = 8192  # XLOG_BLCKSZ, PostgreSQL's default (another value only makes guesses miss)
WAL_SEGMENT = 16 * 2**20  # the default wal_segment_size: a long page header at its start
SHORT_HEADER, LONG_HEADER = 24, 40  # SizeOfXLogShortPHD, SizeOfXLogLongPHD (MAXALIGNed)
PLAIN_COMMIT = 48  # a commit record without subtransactions or invalidations, end - start


class CommitGuess:
    """The end of a transaction's commit record from its start, by the lengths seen so far."""

    def __init__(self) -> None:
        self.lengths: Counter[int] = Counter({PLAIN_COMMIT: 1})  # a prior: a few DDL commits do not outvote it
        self.right = self.wrong = 0

    def learn(self, final_lsn: int | None, end_lsn: int) -> None:
        """A commit seen: how long its record was (page headers taken out)."""
        if final_lsn is None or end_lsn <= final_lsn:
            return
        length = end_lsn - final_lsn - _headers(final_lsn, end_lsn)
        if 0 < length < WAL_PAGE:
            self.lengths[length] += 1

    def end(self, final_lsn: int) -> int:
        """The likeliest end of the commit record that starts at final_lsn."""
        length = min(self.lengths, key=lambda n: (-self.lengths[n], n))  # the most common; the shortest of a tie
        end = final_lsn + length
        return end + _headers(final_lsn, end)

    def checked(self, guessed: int, actual: int) -> bool:
        right = guessed == actual
        self.right += right
        self.wrong += not right
        return right


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
