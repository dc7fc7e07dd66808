"""The hooks through which the pipeline counts what it does into the metrics a serving process
exposes (metrics.py): one line each where the work happens, nothing when no metrics are served.

Apart from metrics.py, which asks pipeline.status at each scrape, so that the pipeline can call
these without an import circle."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from medallion.bronze.ingest import BatchResult

F = TypeVar("F", bound=Callable[..., Any])

active: Any = None  # the metrics.Metrics a serving process records into (None: nothing is recorded)


# The hooks: one line each where the work happens; nothing when no metrics are served.

def batch_written(result: BatchResult) -> None:
    """An ingest batch committed to bronze."""
    if active is not None:
        for table, changes in result.tables.items():
            active.changes.labels(table).inc(changes)


def counting_snapshot(progress: Callable[[str, int], None]) -> Callable[[str, int], None]:
    """progress (a snapshot's per-table callback), counting the rows too."""
    def counted(table: str, rows: int) -> None:
        if active is not None:
            active.snapshot_rows.labels(table).inc(rows)
        progress(table, rows)
    return counted


def refreshed() -> None:
    """Silver and gold were brought up to date (a build, or a follow round that applied bronze)."""
    if active is not None:
        active.last_build.set(time.time())


def records_build(build: F) -> F:
    """Decorates the build: a failure counted, a success timed."""
    @wraps(build)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        try:
            report = build(*args, **kwargs)
        except Exception:  # a stop (Ctrl-C) is not a failure
            if active is not None:
                active.build_failures.inc()
            raise
        refreshed()
        return report
    return recorded  # type: ignore[return-value]
