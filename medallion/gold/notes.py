"""The lines a build's report says about its marts (which path each takes, which is built in
full): kept apart from the planner, so a build without dbt reads its stored notes without
importing sqlglot."""

from __future__ import annotations

NOTES: list[str] = []  # one line per mart built in full, for the build's report (transform.py)


def note(line: str) -> str:
    """A line for the build's report, from the materialization (which path a mart takes, said
    on its full builds only); returns '' so Jinja can call it inline."""
    if line not in NOTES:
        NOTES.append(line)
    return ""


NOTE_MARK = "-- medallion note: "  # how a stored full-build step carries its note (plain_mart.sql)


def stored_notes(warehouse_dsn: str) -> list[str]:
    """The notes of the marts a build without dbt computed in full (their stored steps say so)."""
    from medallion.db import connect

    with connect(warehouse_dsn, "warehouse") as conn:
        if conn.execute("select to_regclass('medallion.follow_step') is null").fetchone()[0]:
            return []
        rows = conn.execute("select split_part(substr(step_sql, length(%s) + 1), E'\\n', 1) from medallion.follow_step "
                            "where layer = 2 and starts_with(step_sql, %s) order by model",
                            [NOTE_MARK, NOTE_MARK]).fetchall()
    return [row[0] for row in rows]
