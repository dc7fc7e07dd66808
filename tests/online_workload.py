"""Shared by the online-snapshot tests (embedded cluster: test_bronze_online_snapshot.py; the
non-superuser servers: test_managed_online_snapshot.py): a concurrent workload on a table keyed
by (region, seq) with a text column v, and waiting for the snapshot to finish."""

from __future__ import annotations

import random
import threading
import time
from typing import Callable

import psycopg
from psycopg import sql

from support import query


class Workload(threading.Thread):
    """Updates, deletes and inserts of random keys of `table` (region text, seq int, v text),
    one small transaction each, until `stop` is set."""

    def __init__(self, dsn: str, table: sql.Identifier, rows: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.dsn, self.table, self.rows, self.random = dsn, table, rows, random.Random(seed)
        self.stop = threading.Event()
        self.done = 0

    def run(self) -> None:
        table = self.table
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                region = self.random.choice(["north", "South", "éast", "west"])
                n = self.random.randint(1, self.rows + 20)
                action = self.random.random()
                if action < 0.5:
                    conn.execute(sql.SQL("update {} set v = %s where region = %s and seq = %s").format(table),
                                 [f"u{self.done}", region, n])
                elif action < 0.75:
                    conn.execute(sql.SQL("delete from {} where region = %s and seq = %s").format(table), [region, n])
                else:
                    conn.execute(sql.SQL("insert into {} values (%s, %s, %s) on conflict do nothing").format(table),
                                 [region, n, f"i{self.done}"])
                self.done += 1
                time.sleep(0.002)


def snapshot_done(wh: str) -> bool:
    """Every online snapshot the warehouse has recorded is finished (False before the first)."""
    try:
        return bool(query(wh, "select count(*) > 0 and bool_and(finished_ts is not null) from bronze.online_snapshot")
                    [0][0])
    except psycopg.errors.UndefinedTable:
        return False


def wait(condition: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def bronze_state(wh: str, bronze: str) -> list[tuple]:
    """A (region, seq, v) table as bronze's rows say it is now: each key's latest row, unless a delete."""
    rows = query(wh, sql.SQL(
        "select distinct on (full_row->>'region', (full_row->>'seq')::int) full_row->>'region', "
        "(full_row->>'seq')::int, full_row->>'v', op from {} order by 1, 2, commit_lsn desc, ordinal desc").format(
        sql.Identifier("bronze", bronze)))
    return [row[:3] for row in rows if row[3] != "D"]
