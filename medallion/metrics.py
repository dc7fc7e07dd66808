"""Prometheus metrics of the long-running processes, `run --follow` and `ingest --follow`.

`--metrics-port N` (or [metrics] port in medallion.toml) serves /metrics in Prometheus' text
format, on 127.0.0.1 unless [metrics] address / --metrics-address says otherwise: table and
slot names are not for every network to read.

Two kinds of numbers, one source of truth each:

- What `medallion status` evaluates (lag, retained WAL, each risk it knows, silver's freshness)
  is evaluated again at each scrape by the same library call (pipeline.status without the row
  counts), so an alert and `status` never disagree. A scrape that cannot reach the source or
  the warehouse says so: medallion_status_code 2, as `status` exits 2.
- What this process did (changes and snapshot rows written per table, builds done and failed)
  is counted where it happens, through the hooks in metric_hooks.py; they do nothing in a process that
  serves no metrics (every other command).

Each Metrics has a registry of its own (never prometheus_client's global one), so that two in
one process (tests) never collide.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from medallion import errorlog, metric_hooks
from medallion.errors import MedallionError
from medallion.health import CHECKS, UNKNOWN, freshness_seconds
# The hooks live in metric_hooks (pipeline calls them; this module calls pipeline.status).
from medallion.metric_hooks import batch_written, counting_snapshot, records_build, refreshed  # noqa: F401

if TYPE_CHECKING:  # prometheus_client loads only in a process that serves metrics
    from medallion.settings import Settings



class Metrics:
    """The registry of one serving process: counters fed by the hooks, and a collector that
    asks the pipeline's health at each scrape."""

    def __init__(self, settings: Settings) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.settings = settings
        self.registry = CollectorRegistry()
        self.changes = Counter("medallion_changes", "Source changes written to bronze by this process, by bronze "
                               "table.", ["table"], registry=self.registry)
        self.snapshot_rows = Counter("medallion_snapshot_rows", "Rows an initial snapshot (or re-sync) copied into "
                                     "bronze in this process, by source table.", ["table"], registry=self.registry)
        self.build_failures = Counter("medallion_build_failures", "Builds of silver and gold that failed in this "
                                      "process.", registry=self.registry)
        self.last_build = Gauge("medallion_last_build_timestamp_seconds", "When silver and gold were last "
                                "brought up to date by this process (a build, or a follow round that applied new "
                                "bronze rows), Unix time; 0 before that.", registry=self.registry)
        self.registry.register(_HealthCollector(settings))

    def scrape(self) -> str:
        """The text a scrape of /metrics gets (tests, and a look without an HTTP server)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()


class _HealthCollector:
    """`medallion status`'s numbers and findings, evaluated at each scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def describe(self) -> list:
        return []  # evaluated only when scraped, never at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from medallion import pipeline

        lag = GaugeMetricFamily("medallion_slot_lag_bytes", "Source WAL written since the slot's confirmed "
                                "position (what bronze has yet to read), as `medallion status` says.")
        retained = GaugeMetricFamily("medallion_wal_retained_bytes", "Source WAL kept for the slot (from its "
                                     "restart_lsn): what fills the source's disk while capture stands still.")
        freshness = GaugeMetricFamily("medallion_silver_freshness_seconds", "Seconds since the source time silver "
                                      "is complete to (silver.horizon()).")
        risk = GaugeMetricFamily("medallion_capture_at_risk", "1 while `medallion status` finds this risk (check: "
                                 "slot, resync, lag, retained_wal, publication), else 0.", labels=["check"])
        code = GaugeMetricFamily("medallion_status_code", "The exit code `medallion status` would give now: 0 "
                                 "healthy, 1 at risk, 2 cannot tell (source or warehouse unreachable).")
        try:
            st = pipeline.status(self.settings, counts=False)
        except Exception as exc:  # noqa: BLE001 - cannot tell: said by the code, the scrape still answers
            if not isinstance(exc, (MedallionError, psycopg.Error)):  # a bug: its traceback kept, as the CLI does
                errorlog.write_traceback(exc)
            code.add_metric([], UNKNOWN)
            yield code
            return
        capture = st.capture
        if capture.lag_bytes is not None:
            lag.add_metric([], capture.lag_bytes)
        if capture.retained_wal_bytes is not None:
            retained.add_metric([], capture.retained_wal_bytes)
        if (fresh := freshness_seconds(st.horizon)) is not None:
            freshness.add_metric([], fresh)
        found = {finding.check for finding in capture.findings}
        for check in CHECKS:
            risk.add_metric([check], 1 if check in found else 0)
        code.add_metric([], capture.exit_code)
        yield from (lag, retained, freshness, risk, code)


@contextmanager
def serving(settings: Settings, port: int, address: str = "127.0.0.1") -> Iterator[Metrics]:
    """Serve /metrics on address:port while the block runs; the hooks record into it meanwhile."""
    from prometheus_client import start_http_server

    metrics = Metrics(settings)
    try:
        server, thread = start_http_server(port, address, registry=metrics.registry)
    except OSError as exc:
        raise MedallionError(f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}: choose another "
                             "--metrics-port (or [metrics] port in medallion.toml)") from None
    metric_hooks.active = metrics
    try:
        yield metrics
    finally:
        metric_hooks.active = None
        server.shutdown()
        server.server_close()
        thread.join(5)
