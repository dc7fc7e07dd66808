"""`medallion status --json`: what `status` shows, as one JSON document a monitor can read.

The shape is stable (SHAPE_VERSION; keys are added, never renamed or removed): every key is
always present, null when unknown, so `jq .lag_bytes` never fails. The numbers and findings are
the ones `status` prints and the Prometheus metrics export (medallion/metrics.py), from the same
evaluation (medallion/health.py). "cannot tell" (exit code 2) is a document too, with `error`.

    {"version": 1, "status": "healthy" | "at_risk" | "unknown", "exit_code": 0 | 1 | 2,
     "error": null | "one line",
     "findings": [{"check": "slot" | "resync" | "lag" | "retained_wal" | "publication",
                   "title": "...", "message": "... the fix"}],
     "lag_bytes": int | null, "retained_wal_bytes": int | null, "shared_cluster": bool,
     "slot": {"name", "exists", "plugin", "active", "active_pid", "wal_status", "restart_lsn",
              "confirmed_flush_lsn", "safe_wal_size"},
     "bronze": null | {"last_commit_lsn", "last_commit_ts", "changes_total", "plugin"},
     "gaps": [{"reason", "last_commit_ts", "resync_ts"}],
     "silver": {"horizon": null | ISO time, "freshness_seconds": null | float},
     "tables": {"<bronze table>": rows}}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from medallion.health import AT_RISK, HEALTHY, UNKNOWN, freshness_seconds

if TYPE_CHECKING:
    from medallion.pipeline import Status

SHAPE_VERSION = 1
_STATUS = {HEALTHY: "healthy", AT_RISK: "at_risk", UNKNOWN: "unknown"}
_SLOT_KEYS = ("plugin", "active", "active_pid", "wal_status", "restart_lsn", "confirmed_flush_lsn", "safe_wal_size")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else value


def _base(slot: str | None, code: int) -> dict[str, Any]:
    return {"version": SHAPE_VERSION, "status": _STATUS[code], "exit_code": code, "error": None, "findings": [],
            "lag_bytes": None, "retained_wal_bytes": None, "shared_cluster": False,
            "slot": {"name": slot, "exists": False, **{key: None for key in _SLOT_KEYS}},
            "bronze": None, "gaps": [], "silver": {"horizon": None, "freshness_seconds": None}, "tables": {}}


def document(st: Status, slot: str) -> dict[str, Any]:
    """The document for a status that could be evaluated (exit code 0 or 1)."""
    capture = st.capture
    doc = _base(slot, capture.exit_code)
    doc["findings"] = [{"check": f.check, "title": f.title, "message": f.message} for f in capture.findings]
    doc["lag_bytes"], doc["retained_wal_bytes"] = capture.lag_bytes, capture.retained_wal_bytes
    doc["shared_cluster"] = capture.shared_cluster
    if st.slot:
        doc["slot"].update({"exists": True, **{key: st.slot.get(key) for key in _SLOT_KEYS}})
        if doc["slot"]["safe_wal_size"] is not None:
            doc["slot"]["safe_wal_size"] = int(doc["slot"]["safe_wal_size"])
    if st.state is not None:
        doc["bronze"] = {"last_commit_lsn": st.state.last_commit_lsn, "last_commit_ts": _iso(st.state.last_commit_ts),
                         "changes_total": st.state.changes_total, "plugin": st.state.plugin}
    doc["gaps"] = [{"reason": reason, "last_commit_ts": _iso(since), "resync_ts": _iso(resynced)}
                   for reason, since, resynced in st.gaps]
    doc["silver"] = {"horizon": _iso(st.horizon), "freshness_seconds": freshness_seconds(st.horizon)}
    doc["tables"] = dict(st.counts)
    return doc


def cannot_tell(slot: str | None, error: str) -> dict[str, Any]:
    """The document when status cannot tell (exit code 2): the error line, nothing else known."""
    doc = _base(slot, UNKNOWN)
    doc["error"] = error
    return doc


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, default=str)
