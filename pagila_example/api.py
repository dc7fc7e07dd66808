"""The example's library calls on a medallion Settings: what `medallion load-pagila`, `simulate`
and `scale` run, and what tests and benchmarks call directly."""

from __future__ import annotations

from collections.abc import Callable

from medallion import pipeline
from medallion.db import endpoints
from medallion.settings import Settings
from pagila_example import pagila
from pagila_example.scale import ScaleReport
from pagila_example.scale import scale as scale_source
from pagila_example.simulate import SimulationReport
from pagila_example.simulate import simulate as run_simulation


def load_pagila(settings: Settings, log: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """(Re)create the source database from Pagila and make its tables capturable.

    Bronze captured from the old database no longer matches it: the slot goes with the
    database, and the warehouse's bronze/silver/gold are reset too."""
    ends = endpoints(settings)
    files = pagila.locate_files(settings.pagila_dir, settings.home / "pagila", log)
    counts = pagila.load(ends.source, files)
    pipeline.reset_warehouse(ends)
    pipeline.prepare_source(settings)
    return counts


def simulate(settings: Settings, seed: int = 42, transactions: int | None = 100, seconds: float | None = None,
             rate: float | None = 50.0, progress: Callable[[int], None] = lambda _: None) -> SimulationReport:
    """Seeded OLTP activity on the source (see pagila_example.simulate)."""
    return run_simulation(endpoints(settings).source, seed, transactions, seconds, rate, progress)


def scale(settings: Settings, factor: int, progress: Callable[[int, int], None] = lambda *_: None) -> ScaleReport:
    """Grow the source to `factor` times Pagila's rentals and payments (see pagila_example.scale)."""
    return scale_source(endpoints(settings).source, factor, progress)
