"""`medallion grant --print-sql`: the statements `medallion grant` would run, grouped by the role
that may run them, for a DBA to run where the pipeline's own login may not (a managed server).

Nothing is executed: the connections only read the catalog (which roles and layers exist) and
render each statement with psycopg.sql, identifiers quoted as the server quotes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from medallion.access import roles


@dataclass(frozen=True)
class Block:
    """Statements for one database, to be run by one kind of role."""

    where: str  # "source database shop"
    runner: str  # who may run them (roles.*_RUNNER)
    statements: list[roles.Statement]


def _creates(conn: psycopg.Connection, wanted: Iterable[tuple[str, str]]) -> tuple[list[roles.Statement], list[str]]:
    """CREATE ROLE for the roles not there yet, and the names of those that are."""
    steps: list[roles.Statement] = []
    existing: list[str] = []
    for role, kind in wanted:
        if roles.role_exists(conn, role):
            existing.append(role)
        else:
            steps += roles.create_role_statements(role, kind)
    return steps, existing


def grant_plan(src: psycopg.Connection, wh: psycopg.Connection, capture: str, pipeline: str, analyst: str,
               tables: Iterable[tuple[str, str]]) -> tuple[list[Block], list[str]]:
    """The blocks `medallion grant` runs, in order, and the roles that exist already (not created)."""
    source, warehouse = f"source database {src.info.dbname}", f"warehouse database {wh.info.dbname}"
    capture_creates, existing = _creates(src, [(capture, "capture")])
    role_creates, more = _creates(wh, [(pipeline, "pipeline"), (analyst, "analyst")])
    if analyst in more:  # grant sets it read-only each time
        role_creates.append(roles.create_role_statements(analyst, "analyst")[1])
    blocks = [Block(source, roles.CAPTURE_ROLE_RUNNER, capture_creates),
              Block(source, roles.SOURCE_GRANT_RUNNER, roles.capture_grant_statements(src.info.dbname, capture, tables)),
              Block(warehouse, roles.ROLE_RUNNER, role_creates),
              Block(warehouse, roles.WAREHOUSE_GRANT_RUNNER,
                    roles.pipeline_grant_statements(wh.info.dbname, pipeline)
                    + roles.analyst_grant_statements(wh, analyst))]
    return [b for b in blocks if b.statements], existing + more


def render(blocks: list[Block], existing: list[str], src: psycopg.Connection, wh: psycopg.Connection) -> list[str]:
    """SQL text: a comment naming where and by whom, then the block's statements, each ending in ';'."""
    lines = ["-- medallion grant --print-sql: nothing was run. Run each block on its database as the role it names,",
             "-- then the pipeline with DSNs of the capture and pipeline roles (docs/reliability.md)."]
    if existing:
        lines.append(f"-- exist already, not created: {', '.join(existing)}")
    for block in blocks:
        conn = src if block.where.startswith("source") else wh
        lines += ["", f"-- on the {block.where}, as {block.runner}:"]
        lines += [f"{step.statement.as_string(conn)};" for step in block.statements]
    return lines
