"""A large open transaction's changes parked on the ingester's local disk, written to bronze once.

A source transaction whose rows outgrow the memory budget (SPILL_BYTES) cannot wait in memory
for its commit, and bronze cannot take its rows before then: a bronze row's commit_lsn is the
END of the commit record, which only the Commit message carries (pgoutput's Begin has the
start of the commit record, wal2json's none). Parking the rows in a warehouse table and moving
them at the commit wrote every change twice (COPY, then INSERT..SELECT and DELETE: about 30%
of the wall time of a large transaction). Here they are parked as COPY text in an anonymous
temporary file per bronze table, without their two commit columns; at the commit the file is
streamed into the bronze table once, each line given the commit's position and time on the
way (one bytes.replace per chunk).

Crash safety needs nothing: the files are unlinked at creation, so a
killed ingester leaves no trace, and the server sends every unconfirmed transaction again.

Unchanged large values (medallion.bronze.unchanged) may need a row's previous version from a
spilled part of the transaction: the file is indexed by key on the first such lookup (each
line read once), and kept up to date for what is spilled after it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO

import orjson

from medallion.bronze.unchanged import ROW_OPS, key_of

# the bronze columns a spill line holds, in order; the commit's two are appended when it is written
LINE_COLUMNS = ("ordinal", "lsn", "xid", "op", "full_row", "old_row", "source_table")
COMMIT_COLUMNS = ("commit_lsn", "commit_ts")
SPILL_PREFIX = "medallion-spill-"
NULL = "\\N"  # COPY text's null
CHUNK = 1 << 20  # bytes streamed to COPY at a time
APPEND_ROWS = 5_000  # rows turned into spill lines at a time
_UNESCAPE = re.compile(rb"\\(.)")
_UNESCAPED = {b"\\": b"\\", b"n": b"\n", b"r": b"\r", b"t": b"\t"}


def copy_text(value: str) -> str:
    """A text value as a field of COPY's text format (backslash, tab, newline, CR escaped)."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\n" in value or "\t" in value or "\r" in value:
        value = value.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return value


def _field(raw: bytes) -> str | None:
    """A COPY text field back to its value (copy_text's inverse; \\N is null)."""
    if raw == b"\\N":
        return None
    if b"\\" in raw:
        raw = _UNESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(1)), raw)
    return raw.decode("utf-8")


def lines(rows: Iterable[tuple], xid: int | None) -> str:
    """CapturedRow tuples (ordinal, lsn, op, full_row, old_row, source_table) as spill lines."""
    xid_text = NULL if xid is None else str(xid)
    out = []
    append = out.append
    for ordinal, lsn, op, full_row, old_row, source_table in rows:
        full = NULL if full_row is None else copy_text(full_row)
        old = NULL if old_row is None else copy_text(old_row)
        append(f"{ordinal}\t{lsn}\t{xid_text}\t{op}\t{full}\t{old}\t{copy_text(source_table)}\n")
    return "".join(out)


def _unlinked_file() -> IO[bytes]:
    """A temporary file already unlinked (nothing left behind by a SIGKILL) that keeps its name in
    /proc/<pid>/fd ("medallion-spill-... (deleted)"), unlike TemporaryFile's O_TMPFILE: tests and
    operators can see a spill under way."""
    handle, path = tempfile.mkstemp(prefix=SPILL_PREFIX)
    os.unlink(path)
    return os.fdopen(handle, "w+b")


def commit_suffix(commit_lsn: int, commit_ts: object) -> bytes:
    """The end of each line once its transaction has committed: COMMIT_COLUMNS' fields."""
    return f"\t{commit_lsn}\t{commit_ts}\n".encode()


def copy_block(rows: list[tuple], xid: int | None, commit_lsn: int, commit_ts: object) -> bytes:
    """A committed transaction's rows (held in memory) as COPY text of LINE_COLUMNS + COMMIT_COLUMNS:
    built as text here rather than row by row by the driver (~2x cheaper a change)."""
    return lines(rows, xid).encode("utf-8").replace(b"\n", commit_suffix(commit_lsn, commit_ts))


@dataclass
class SpillFile:
    """One bronze table's spilled rows of one open transaction."""

    file: IO[bytes] = field(default_factory=lambda: _unlinked_file())
    rows: int = 0
    size: int = 0
    key: tuple[str, ...] | None = None  # the key the index is by (None: not indexed yet)
    latest: dict[tuple, tuple[int, int]] = field(default_factory=dict)  # key -> (row number, byte offset)
    truncated: int = -1  # row number of the last truncate

    def append(self, rows: list[tuple], xid: int | None, also: Callable[[bytes], None] | None = None) -> None:
        """Add rows (CapturedRow tuples), a slice at a time (the text of a whole spill at once
        doubled the peak memory); also(lines) is given each slice's lines as written."""
        self.file.seek(0, 2)
        for at in range(0, len(rows), APPEND_ROWS):
            part = rows[at:at + APPEND_ROWS]
            data = lines(part, xid).encode("utf-8")
            if self.key is not None:  # indexed already: keep it up to date
                offset = self.size
                for row, line in zip(part, data.splitlines(keepends=True)):
                    self._note(row[2], row[3], self.rows, offset)
                    self.rows += 1
                    offset += len(line)
            else:
                self.rows += len(part)
            self.file.write(data)
            self.size += len(data)
            if also is not None:
                also(data)

    def _note(self, op: str, full_row: str | None, number: int, offset: int) -> None:
        if op == "T":
            self.truncated = number
        elif full_row is not None:
            self.latest[key_of(orjson.loads(full_row), self.key)] = (number, offset)

    def _index(self, key: tuple[str, ...]) -> None:
        """Read the file once, noting each key's last row (on the first lookup)."""
        self.key, self.latest, self.truncated = key, {}, -1
        self.file.flush()
        self.file.seek(0)
        offset = 0
        for number, line in enumerate(self.file):
            fields = line.rstrip(b"\n").split(b"\t")
            self._note(fields[3].decode(), _field(fields[4]), number, offset)
            offset += len(line)

    def find(self, key: tuple[str, ...], wanted: tuple) -> tuple[bool, dict | None]:
        """(found, the row) of the newest spilled version of the row with key = wanted: found with
        None when it was deleted or truncated (nothing earlier may be used)."""
        if self.key != key:
            self._index(key)
        number, offset = self.latest.get(wanted, (-1, -1))
        if self.truncated > number:
            return True, None
        if number < 0:
            return False, None
        self.file.flush()
        self.file.seek(offset)
        fields = self.file.readline().rstrip(b"\n").split(b"\t")
        full_row = _field(fields[4])
        return True, (orjson.loads(full_row) if fields[3].decode() in ROW_OPS and full_row else None)

    def copy_chunks(self, commit_lsn: int, commit_ts: object) -> Iterable[bytes]:
        """The file as COPY text of LINE_COLUMNS + COMMIT_COLUMNS, in chunks of whole lines."""
        suffix = commit_suffix(commit_lsn, commit_ts)
        self.file.flush()
        self.file.seek(0)
        rest = b""
        while chunk := self.file.read(CHUNK):
            chunk = rest + chunk
            cut = chunk.rfind(b"\n") + 1
            rest = chunk[cut:]
            yield chunk[:cut].replace(b"\n", suffix)
        if rest:
            raise ValueError("a spill file ends inside a line")

    def close(self) -> None:
        self.file.close()


class Spills:
    """The spill files of the open (or committed, not yet written) transactions: (xid, bronze table)."""

    def __init__(self) -> None:
        self.files: dict[tuple[int | None, str], SpillFile] = {}

    def add(self, xid: int | None, target: str, rows: list[tuple],
            also: Callable[[bytes], None] | None = None) -> None:
        """Spill one bronze table's rows (see SpillFile.append)."""
        self.files.setdefault((xid, target), SpillFile()).append(rows, xid, also)

    def get(self, xid: int | None, target: str) -> SpillFile | None:
        return self.files.get((xid, target))

    def drop(self, xid: int | None) -> None:
        for name in [name for name in self.files if name[0] == xid]:
            self.files.pop(name).close()

    def clear(self) -> None:
        for spilled in self.files.values():
            spilled.close()
        self.files = {}
