"""The replication slot on the source: creation with an exported snapshot, locking, advancing.

The slot is the source's bookmark. It moves only after bronze has committed what it covers;
until then a crash makes the source hand the same changes out again, and bronze skips them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import psycopg2
import psycopg2.errors
from psycopg2.extras import LogicalReplicationConnection

from medallion.db import SESSION_OPTIONS, redact, sql_text
from medallion.errors import MedallionError, SlotBusy, SourceNotReady

PLUGINS = ("pgoutput", "wal2json")
DEFAULT_PLUGIN = "pgoutput"  # built into every PostgreSQL since 10; wal2json needs a package
_SLOT_NAME = re.compile(r"^[a-z0-9_]{1,63}$")


def validate_slot_name(slot: str) -> str:
    if not _SLOT_NAME.match(slot):
        raise MedallionError(
            f"slot name {slot!r} is not valid: use lower-case letters, digits and '_' (MEDALLION_SLOT)")
    return slot


@dataclass(frozen=True)
class CreatedSlot:
    consistent_lsn: str
    snapshot_name: str


class ExportedSnapshotSlot:
    """CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT on a replication connection.

    The exported snapshot lives only while this connection stays open and idle, so the
    initial load reads the tables inside this context."""

    def __init__(self, dsn: str, slot: str, plugin: str = DEFAULT_PLUGIN, temporary: bool = False) -> None:
        self.dsn = dsn
        self.slot = validate_slot_name(slot)
        self.plugin = plugin
        self.temporary = temporary
        self._conn: psycopg2.extensions.connection | None = None

    def __enter__(self) -> CreatedSlot:
        try:
            self._conn = psycopg2.connect(
                self.dsn, connection_factory=LogicalReplicationConnection, options=SESSION_OPTIONS,
                application_name="medallion-snapshot")
        except psycopg2.OperationalError as exc:
            raise SourceNotReady(
                f"the source refused a replication connection ({redact(self.dsn)}): "
                f"{str(exc).strip().splitlines()[0]}; allow 'replication' for this user in pg_hba.conf "
                "and give the role REPLICATION") from None
        cur = self._conn.cursor()
        try:
            # The slot name was validated above and the plugin is one of PLUGINS: replication
            # commands take no parameters.
            assert self.plugin in PLUGINS
            temporary = " TEMPORARY" if self.temporary else ""
            cur.execute(f"CREATE_REPLICATION_SLOT {self.slot}{temporary} LOGICAL {self.plugin} EXPORT_SNAPSHOT")
        except psycopg2.Error as exc:
            self._conn.close()
            message = str(exc).strip().splitlines()[0]
            if self.plugin in message and ("could not access" in message or "No such file" in message):
                raise SourceNotReady(
                    f"the source server has no {self.plugin} output plugin: install it on the source host "
                    f"(apt-get install postgresql-<version>-{self.plugin}) or use pgoutput, the default "
                    "(unset MEDALLION_PLUGIN / [capture] plugin)") from None
            raise SourceNotReady(f"cannot create replication slot {self.slot}: {message}") from None
        _, consistent_lsn, snapshot_name, _ = cur.fetchone()
        return CreatedSlot(consistent_lsn, snapshot_name)

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()


def slot_row(conn: psycopg.Connection, slot: str) -> dict | None:
    row = conn.execute(
        "select slot_name, plugin, database, active_pid, confirmed_flush_lsn::text "
        "from pg_replication_slots where slot_name = %s", [slot]).fetchone()
    if row is None:
        return None
    return dict(zip(("slot_name", "plugin", "database", "active_pid", "confirmed_flush_lsn"), row))


def drop(conn: psycopg.Connection, slot: str) -> None:
    conn.execute("select pg_drop_replication_slot(%s)", [slot])


def status(conn: psycopg.Connection, slot: str) -> dict | None:
    cur = conn.execute(sql_text("medallion.bronze", "slot_status.sql"), {"slot": slot})
    row = cur.fetchone()
    return dict(zip([c.name for c in cur.description], row)) if row else None


class IngesterLock:
    """One ingester per slot: a session advisory lock on the source, held while ingesting.

    A crashed ingester's backend may live on for a moment (until it notices the client is
    gone), so acquiring waits up to `wait` seconds before giving up."""

    def __init__(self, conn: psycopg.Connection, slot: str) -> None:
        self.conn = conn
        self.key = f"medallion-ingest:{slot}"
        self.slot = slot

    def acquire(self, wait: float, notify: Callable[[str], None] = lambda _: None) -> None:
        deadline = time.monotonic() + wait
        told = False
        while True:
            got = self.conn.execute(
                "select pg_try_advisory_lock(hashtextextended(%s, 0))", [self.key]).fetchone()[0]
            if got:
                return
            holder = self.conn.execute(sql_text("medallion.bronze", "lock_holder.sql"),
                                       {"key": self.key}).fetchone()
            who = f"source backend pid {holder[0]} ({holder[1]}, {holder[2]})" if holder else "another session"
            if time.monotonic() >= deadline:
                raise SlotBusy(
                    f"another ingester is running on slot {self.slot} ({who}): stop it first, "
                    "or use another MEDALLION_SLOT for a second pipeline")
            if not told:
                notify(f"waiting up to {wait:.0f}s for the ingester holding slot {self.slot} ({who})")
                told = True
            time.sleep(0.25)
