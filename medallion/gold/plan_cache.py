"""Plans already made, kept on disk: a mart's plan is a pure function of its compiled SQL, what
silver knows of the relations it reads, its grain and the planner's own code, and making one
costs sqlglot 0.06-0.3 s of CPU per mart at every dbt build (Pagila's three marts took about
2 s of a build's wall time with dbt's threads sharing the GIL). A plan whose inputs were seen
before is read back instead; anything unreadable is planned again, so the cache can only save
time, never change a build.

Kept in $MEDALLION_PLAN_CACHE, else $XDG_CACHE_HOME/medallion/gold-plans (~/.cache/...), as one
JSON file per plan, the oldest pruned past MAX_PLANS. A leaf: it imports the planner (and so
sqlglot) only on a miss."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from medallion.gold.notes import NOTES
from medallion.user_cache import store_json, user_cache

MAX_PLANS = 400


def planner_digest() -> str:
    """The gold planner's own code (medallion/gold/*.py) and sqlglot's version turn a mart's SQL
    into its statements: a change to either (a development checkout, where medallion's version
    stays) is a change of the plans, and of the statements a stored build keeps (stored_build.py)."""
    from importlib import metadata

    digest = hashlib.sha256(f"sqlglot {metadata.version('sqlglot')}".encode())  # it reads the SQL
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_dir() -> Path:
    return user_cache("gold-plans", "MEDALLION_PLAN_CACHE")


def cached_plan_mart(mart: str, sql: str, relations: dict[str, dict], grain: list[str] | None = None,
                     state: list[str] | None = None) -> dict[str, Any]:
    """plan.plan_mart's answer, read back when the same inputs were planned by the same planner."""
    inputs = json.dumps([planner_digest(), mart, sql, relations, grain, state], sort_keys=True, default=str)
    path = cache_dir() / f"{hashlib.sha256(inputs.encode()).hexdigest()}.json"
    try:
        plan = json.loads(path.read_text())
    except (OSError, ValueError):
        plan = None
    if isinstance(plan, dict):
        if plan.get("note") and plan["note"] not in NOTES:
            NOTES.append(plan["note"])  # what plan_mart says of a mart built in full, said again
        return plan
    from medallion.gold.plan import plan_mart

    plan = plan_mart(mart, sql, relations, grain, state)
    _store(path, plan)
    return plan


def _store(path: Path, plan: dict[str, Any]) -> None:
    """Kept (user_cache.store_json), the oldest pruned past MAX_PLANS; a cache that cannot be
    written (a read-only home) only costs the next build its planning time."""
    if not store_json(path, plan):
        return
    try:
        kept = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-MAX_PLANS]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
