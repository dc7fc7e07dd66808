"""The statements of each model's next incremental batch, as its last dbt build stored them.

Every incremental materialization (silver histories, partitioned current-state tables, gold
marts) stores in medallion.follow_step what its next batch runs, with the batch's bronze bounds
left as placeholders (medallion/dbt/macros/follow.sql). Two callers run them without starting
dbt: `run --follow` after each bronze commit (follow.py), and `medallion build` when the project
is the one the storing build ran (stored_build.py). Both apply a step as dbt would have: in one
transaction with the model's lock and its watermark, and hand back to dbt what a step cannot
carry (a schema change, a truncate, a re-sync, a stretch gold has not seen).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

SILVER, GOLD = 1, 2  # follow_step.layer


@dataclass(frozen=True)
class Step:
    """What a model's next incremental batch runs, as its last build stored it."""

    model: str  # schema.table, as medallion.build_watermark names it
    layer: int
    lock_sql: str
    high_sql: str | None
    needs_build_sql: str | None
    step_sql: str | None
    idle_sql: str | None
    project_fingerprint: str | None = None  # the project the storing build ran (None: not recorded)


def fill(text: str, lo: int, hi: int) -> str:
    """A stored statement with its batch bounds (bronze commit positions, integers) filled in."""
    return text.replace("__lo__", str(int(lo))).replace("__hi__", str(int(hi)))


def load_steps(conn: psycopg.Connection) -> list[Step]:
    """Every stored step, silver's before gold's. (Both callers read them after a dbt build of
    this version, whose on-run-start gave the table its project_fingerprint column.)"""
    if conn.execute("select to_regclass('medallion.follow_step') is null").fetchone()[0]:
        return []
    rows = conn.execute("select model, layer, lock_sql, high_sql, needs_build_sql, step_sql, idle_sql, "
                        "project_fingerprint from medallion.follow_step order by layer, model").fetchall()
    return [Step(*row) for row in rows]


def apply_silver(conn: psycopg.Connection, step: Step, idle: bool = True, checked_from: int | None = None
                 ) -> tuple[bool, str | None]:
    """Apply what bronze holds past the model's watermark, in one transaction with its lock.

    Returns (rows applied, the reason a dbt build is needed instead). idle: with nothing new,
    still move the model's horizon (complete_to) to where bronze is complete. checked_from: check
    the stretch from this position (when lower than the watermark) for what needs dbt too, e.g.
    the stretch the build's tests will cover."""
    with conn.transaction():
        conn.execute(step.lock_sql)
        lo = conn.execute("select coalesce(max(last_commit_lsn), -1) from medallion.build_watermark "
                          "where model = %s", [step.model]).fetchone()[0]
        hi = conn.execute(fill(step.high_sql or "select -1", lo, lo)).fetchone()[0]
        since = min(lo, checked_from) if checked_from is not None else lo
        if hi > since and conn.execute(fill(step.needs_build_sql or "select false", since, hi)).fetchone()[0]:
            return False, (f"bronze holds a truncate, a re-sync or a schema change for {step.model} since its last "
                           "build, which only dbt applies")
        if hi > lo:
            conn.execute(fill(step.step_sql or "", lo, hi))
            return True, None
        if hi >= 0 and idle and step.idle_sql:
            conn.execute(fill(step.idle_sql, hi, hi))  # the horizon moves with an idle source
    return False, None


def apply_gold(conn: psycopg.Connection, step: Step) -> str | None:
    """Recompute what silver's new stretch touched in one mart; the reason a dbt build is needed
    instead, if any.

    One snapshot for the whole step (repeatable read): the silver watermarks it captures as its
    stretch and the silver it reads then are the same moment. `run --follow` applies silver in
    another thread meanwhile; under read committed a later statement of the step would read
    silver past the captured stretch, and the next step would count that change again
    (tests/test_gold_beside_silver.py). Silver commits its rows with its watermark, so one
    snapshot sees both or neither."""
    if not step.step_sql:
        return f"{step.model} has no statements stored yet (it was never built incrementally); dbt stores them"
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read")
        conn.execute(step.lock_sql)
        if step.needs_build_sql and conn.execute(step.needs_build_sql).fetchone()[0]:
            return (f"the mart {step.model} must be recomputed whole (it reads a silver table it has not seen yet, "
                    "or a truncate, a re-sync or a schema change)")
        conn.execute(step.step_sql)
    return None
