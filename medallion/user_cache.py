"""Where medallion keeps what only saves time (gold plans, dbt's JSON schemas): per user, outside
any project, since a cache entry is a pure function of its key."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def user_cache(kind: str, variable: str) -> Path:
    """$<variable> when set, else $XDG_CACHE_HOME/medallion/<kind> (~/.cache/medallion/<kind>)."""
    configured = os.environ.get(variable)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medallion" / kind


def store_json(path: Path, value: object) -> bool:
    """Written whole or not at all (a rename), by any number of processes at once; False when it
    cannot be (a read-only home, a value JSON cannot hold), which only costs the next run time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as out:
            json.dump(value, out)
        os.replace(out.name, path)
        return True
    except (OSError, TypeError, ValueError):
        return False
