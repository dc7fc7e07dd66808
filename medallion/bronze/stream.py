"""The replication connection: one slot streamed over PostgreSQL's replication protocol.

psycopg 3 has no replication API; psycopg2's LogicalReplicationConnection does (START_REPLICATION,
feedback). The server decodes while this process parses and writes: no re-decoding from the
slot's restart point per batch, as the SQL peek functions do. The server forgets WAL only up to
the flush position this client confirms, and that is confirmed only after bronze has committed.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2.extras import LogicalReplicationConnection

from medallion.db import SESSION_OPTIONS, redact
from medallion.errors import ConnectionLost, SlotBusy, SourceNotReady

STATUS_INTERVAL = 10  # seconds between automatic feedback messages (wal_sender_timeout is 60 s)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ReplicationStream:
    """START_REPLICATION on a slot from a position; read messages; confirm flushed positions."""

    def __init__(self, dsn: str, slot: str, options: dict[str, str], start_lsn: int) -> None:
        self.dsn = dsn
        self.slot = slot
        self.options = options
        self.start_lsn = start_lsn
        self.confirmed = start_lsn
        self._conn: Any = None
        self._cur: Any = None

    def __enter__(self) -> ReplicationStream:
        try:
            self._conn = psycopg2.connect(self.dsn, connection_factory=LogicalReplicationConnection,
                                          options=SESSION_OPTIONS, application_name="medallion-stream")
        except psycopg2.OperationalError as exc:
            raise SourceNotReady(
                f"the source refused a replication connection ({redact(self.dsn)}): {_first_line(exc)}; allow "
                "'replication' for this user in pg_hba.conf and give the role REPLICATION") from None
        self._cur = self._conn.cursor()
        try:
            self._cur.start_replication(slot_name=self.slot, decode=False, start_lsn=self.start_lsn,
                                        options=self.options, status_interval=STATUS_INTERVAL)
        except psycopg2.errors.ObjectInUse as exc:
            self.close()
            raise SlotBusy(f"slot {self.slot} is in use by another process ({_first_line(exc)}): stop it first") \
                from None
        except psycopg2.Error as exc:
            self.close()
            raise SourceNotReady(f"cannot stream slot {self.slot}: {_first_line(exc)}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()

    def read(self, timeout: float) -> Any:
        """The next message (payload, data_start, ...), or None after timeout seconds without one."""
        try:
            message = self._cur.read_message()
            if message is None:
                ready, _, _ = select.select([self._conn], [], [], timeout)
                if ready:
                    message = self._cur.read_message()
            return message
        except psycopg2.errors.UndefinedObject as exc:  # e.g. the publication was dropped
            raise SourceNotReady(f"slot {self.slot}: {_first_line(exc)}: run 'medallion prepare-source'") from None
        except psycopg2.Error as exc:
            if "publication" in str(exc):
                raise SourceNotReady(f"slot {self.slot}: {_first_line(exc)}: run 'medallion prepare-source'") from None
            raise self._lost_or(exc) from None

    @property
    def wal_end(self) -> int:
        """How far the server has decoded and sent (updated by data and keepalive messages)."""
        return int(self._cur.wal_end or 0)

    def confirm(self, lsn: int) -> None:
        """Tell the server that everything up to lsn is safely in bronze: it may free that WAL."""
        if lsn > self.confirmed:
            self._send_feedback(write_lsn=lsn, flush_lsn=lsn, apply_lsn=lsn, force=True)
            self.confirmed = lsn

    def ask_position(self) -> None:
        """Ask the server for a keepalive now, so that wal_end is fresh."""
        self._send_feedback(reply=True, force=True)

    def _send_feedback(self, **feedback: Any) -> None:
        try:
            self._cur.send_feedback(**feedback)
        except psycopg2.Error as exc:
            raise self._lost_or(exc) from None

    def _lost_or(self, exc: psycopg2.Error) -> Exception:
        """ConnectionLost when the source went away, not the request: libpq lost the connection
        (no SQLSTATE; once a fast shutdown ended the COPY, psycopg2 says 'no COPY in progress'
        to the next read or feedback), a connection exception (08) or an operator intervention
        (57: shutdown, crash). Otherwise the error itself."""
        if self._conn.closed or exc.pgcode is None or exc.pgcode[:2] in ("08", "57"):
            return ConnectionLost(f"lost the replication connection ({_first_line(exc)})")
        return exc
