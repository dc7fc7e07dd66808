"""Pagila at scale: N times its rentals and payments, with matching customers and inventory.

Copy k (1..N-1) repeats the original rows with ids shifted by k * stride, so foreign keys
stay valid and months stay the same (a month's revenue grows N-fold). The rows go in with
COPY, as a bulk load would, which is also what the decoding benchmark should see. Copies
that already exist are skipped: scaling twice to the same factor changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from medallion.db import connect
from medallion.sqlfiles import named_sql, sql_text
from medallion.errors import MedallionError

SMALL_STRIDE = 100_000  # customers, inventory: Pagila has < 5,000
LARGE_STRIDE = 1_000_000  # rentals, payments: Pagila has < 33,000 ids
TABLES = ("customer", "inventory", "rental", "payment")
_Q = "pagila_example"


@dataclass
class ScaleReport:
    factor: int
    copies_added: int
    rentals: int
    payments: int


def _add_copy(conn: psycopg.Connection, copy: int) -> None:
    selects, targets = named_sql(_Q, "scale_copies.sql"), named_sql(_Q, "scale_targets.sql")
    strides = {"copy": sql.Literal(copy), "small_stride": sql.Literal(SMALL_STRIDE),
               "large_stride": sql.Literal(LARGE_STRIDE)}
    with conn.transaction():
        for table in TABLES:
            select = sql.SQL(selects[table]).format(**strides)
            target = sql.SQL("copy public." + targets[table] + " from stdin")
            with conn.cursor() as out_cur, conn.cursor() as in_cur:
                # Read the whole copy first: one connection cannot stream COPY out and in at once.
                with out_cur.copy(sql.SQL("copy ({}) to stdout").format(select)) as out:
                    data = b"".join(bytes(block) for block in out)
                with in_cur.copy(target) as inp:
                    inp.write(data)


def scale(dsn: str, factor: int, progress: Callable[[int, int], None] = lambda *_: None) -> ScaleReport:
    if factor < 1:
        raise MedallionError("--factor must be 1 or more")
    with connect(dsn, "source") as conn:
        max_customer, max_inventory, present = conn.execute(
            sql_text(_Q, "scale_state.sql"),
            {"small_stride": SMALL_STRIDE, "large_stride": LARGE_STRIDE}).fetchone()
        if max_customer is None or max_inventory is None:
            raise MedallionError("the source has no Pagila rows to scale: run 'medallion load-pagila' first")
        added = 0
        for copy in range(1, factor):
            if copy not in present:
                _add_copy(conn, copy)
                added += 1
            progress(copy, factor - 1)
        with conn.transaction():
            conn.execute(sql_text(_Q, "scale_sync_sequences.sql"))
        rentals, payments = conn.execute(sql_text(_Q, "scale_counts.sql")).fetchone()
    return ScaleReport(factor, added, rentals, payments)
