"""Warehouse advisory locks that keep `reset` away from running work, and builds apart from
the follower's rounds.

IN_USE: held shared for the whole life of `run --follow` and of every `build`; `reset` takes it
exclusively without waiting and refuses when it cannot. (The ingester's own lock on the source
is free while `run --follow` runs a dbt build, so it alone cannot tell.)

LAYERS: a build holds it exclusively from its first model to its last test; `run --follow`
takes it shared for each round of stored steps. So silver and gold move during a build only by
the build's own steps: every mart it refreshes reads the same silver, and its tests read one
state, never a follower's round half-way (gold_marts_agree compares three marts).

Both are session locks on a connection of their own: a crashed or restarted holder leaves
nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from medallion.context import Context
from medallion.db import connect
from medallion.sqlfiles import sql_text
from medallion.errors import WarehouseInUse
from medallion.settings import Settings

IN_USE = "medallion-warehouse-in-use"
LAYERS = "medallion-warehouse-layers"


def _key(conn: psycopg.Connection, statement: str, key: str) -> object:
    return conn.execute(f"select {statement}(hashtextextended(%s, 0))", [key]).fetchone()[0]


class InUse:
    """IN_USE held shared on a connection of its own, taken again after the warehouse restarted."""

    def __init__(self, ctx: Settings | Context) -> None:
        self.dsn = Context.of(ctx).endpoints.warehouse
        self.conn: psycopg.Connection | None = None

    def ensure(self) -> None:
        """Hold the lock: connect and take it when the connection is new or was lost."""
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            try:
                self.conn.execute("select 1")
                return
            except psycopg.OperationalError:
                self.close()
        self.conn = connect(self.dsn, "warehouse", autocommit=True)
        _key(self.conn, "pg_advisory_lock_shared", IN_USE)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


@contextmanager
def building(ctx: Settings | Context) -> Iterator[None]:
    """Around a build: IN_USE shared (no reset meanwhile) and LAYERS exclusive (no follower
    round meanwhile; waits for the one in progress, a fraction of a second)."""
    with connect(Context.of(ctx).endpoints.warehouse, "warehouse", autocommit=True) as conn:
        _key(conn, "pg_advisory_lock_shared", IN_USE)
        _key(conn, "pg_advisory_lock", LAYERS)
        yield


@contextmanager
def round_of_steps(conn: psycopg.Connection) -> Iterator[None]:
    """Around one follower round on its connection (outside a transaction): LAYERS shared."""
    _key(conn, "pg_advisory_lock_shared", LAYERS)
    conn.commit()
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.rollback()  # a step failed half-way: its transaction is gone, the session lock is not
            _key(conn, "pg_advisory_unlock_shared", LAYERS)
            conn.commit()


def refuse_while_in_use(conn: psycopg.Connection, what: str) -> None:
    """Take IN_USE exclusively on conn (kept until conn closes), or raise WarehouseInUse naming
    who holds it."""
    if _key(conn, "pg_try_advisory_lock", IN_USE):
        return
    holder = conn.execute(sql_text("medallion.bronze", "lock_holder.sql"), {"key": IN_USE}).fetchone()
    who = f" (warehouse backend pid {holder[0]})" if holder else ""
    raise WarehouseInUse(f"'medallion run --follow' or a build is using the warehouse{who}: stop it (Ctrl-C) "
                         f"or let it finish before {what}")
