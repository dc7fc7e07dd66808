"""The example's commands, offered by `medallion` through the `medallion.commands` entry point
(pyproject.toml): `medallion load-pagila`, `simulate`, `scale` and `demo`. Each is a click
command with the engine's one-line errors (medallion.cli.friendly_errors)."""

from __future__ import annotations

from dataclasses import replace

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from medallion.cli import err, friendly_errors, note, out
from medallion.errors import MedallionError
from medallion.settings import PAGILA_CONFIG, Settings, load_settings
from pagila_example import api
from pagila_example.demo import DemoReport, run_demo


@click.command("load-pagila")
@friendly_errors
def load_pagila() -> None:
    """(Re)create the source database from the Pagila files.

    Reads pagila-schema.sql and pagila-data.sql from PAGILA_DIR, or downloads the pinned
    upstream files (sha256-checked) into MEDALLION_HOME/pagila. The slot and the
    warehouse's bronze/silver/gold of the old source are dropped with it.

    \b
    Example:
      PAGILA_DIR=../shared/pagila medallion load-pagila
    """
    counts = api.load_pagila(load_settings(), note)
    out.print(f"Pagila loaded: {counts['rental']} rentals, {counts['payment']} payments, "
              f"{counts['customer']} customers, {counts['film']} films")


@click.command()
@click.option("--seed", default=42, show_default=True, help="Same seed, same statements (on the same source).")
@click.option("--transactions", "-n", type=click.IntRange(min=1), default=None,
              help="Stop after this many transactions.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after this long.")
@click.option("--rate", type=click.FloatRange(min=0), default=50.0, show_default=True,
              help="Target transactions per second; 0 runs as fast as the source allows.")
@friendly_errors
def simulate(seed: int, transactions: int | None, seconds: float | None, rate: float) -> None:
    """Run realistic OLTP activity on the source.

    New rentals with their payments (creating the monthly payment partitions the source
    lacks), returns, late fees, customer changes (email, address, active), film rate and
    rating changes, new customers, occasional payment deletes; several rows per statement
    too. Business timestamps follow a simulated clock, so a seed reproduces the same history.

    \b
    Examples:
      medallion simulate -n 500 --rate 0          # 500 transactions, as fast as possible
      medallion simulate --seconds 60 --rate 20   # a minute of traffic at ~20 tps
    """
    if transactions is None and seconds is None:
        transactions = 100
    total = transactions
    with Progress(TextColumn("simulate"), BarColumn(), MofNCompleteColumn() if total else TextColumn(""),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("simulate", total=total)
        report = api.simulate(load_settings(), seed, transactions, seconds, rate or None,
                                   lambda done: bar.update(task, completed=done))
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.kinds.items()))
    out.print(f"simulated {report.transactions} transactions in {report.seconds:.1f}s ({kinds})")
    if report.partitions_created:
        out.print(f"created partitions: {', '.join(report.partitions_created)}")


@click.command()
@click.option("--factor", type=click.IntRange(min=1), required=True, help="Target multiple of Pagila's rentals.")
@friendly_errors
def scale(factor: int) -> None:
    """Grow the source to N times Pagila's rentals and payments, for benchmarks.

    Adds copies of the original rentals and payments with their own customers and inventory
    (ids shifted, foreign keys valid, same months) by COPY. Copies already there are kept.

    \b
    Example:
      medallion load-pagila && medallion scale --factor 10
    """
    with Progress(TextColumn("scale"), BarColumn(), MofNCompleteColumn(), console=err, transient=True) as bar:
        task = bar.add_task("scale", total=max(factor - 1, 1))
        report = api.scale(load_settings(), factor, lambda done, _: bar.update(task, completed=done))
    out.print(f"source at factor {factor}: {report.rentals:,} rentals, {report.payments:,} payments "
              f"({report.copies_added} copies added)")


@click.command()
@friendly_errors
def demo() -> None:
    """From nothing to a report on the embedded default, in about a minute.

    Starts the embedded PostgreSQL, loads Pagila, captures it into bronze, builds silver and
    gold, makes a burst of source changes (a rental and its payment, a return, an email change,
    a price change), runs again, and reports: rows per layer, top months, and time travel.

    \b
    Example:
      make demo      # the same, after installing everything
      medallion demo
    """
    settings = replace(load_settings(), config_path=PAGILA_CONFIG)  # the demo is the Pagila project
    if not settings.embedded:
        raise MedallionError("the demo recreates its source and warehouse: unset MEDALLION_SOURCE_DSN and "
                             "MEDALLION_WAREHOUSE_DSN to run it on the embedded default")
    report = run_demo(settings, lambda what: out.rule(what, align="left"))
    _print_demo(settings, report)


def _print_demo(settings: Settings, report: DemoReport) -> None:
    out.rule("report", align="left")
    out.print(f"bronze initial load: {report.snapshot_rows:,} rows at {report.snapshot_rows_per_s:,.0f} changes/s; "
              f"the burst: {report.burst_changes} changes")
    layers = Table("layer", "table", "rows", title="rows per layer")
    for layer, tables in report.layers.items():
        if layer == "bronze":  # one line for the 15 change tables
            layers.add_row(layer, f"{len(tables)} tables br_<table>_cdc", f"{sum(c for _, c in tables):,}")
            continue
        for name, count in tables:
            layers.add_row(layer, name, f"{count:,}")
    out.print(layers)
    months = Table("month", "revenue", "payments", title="top revenue months (gold.vw_monthly_revenue)")
    for month, revenue, payments in report.top_months:
        months.add_row(str(month), f"{revenue:,.2f}", f"{payments:,}")
    out.print(months)
    travel = Table("as of", "customer 1 email (silver)", "store 1, 2022-07 revenue (gold)", title="time travel")
    def mart(row: tuple | None) -> str:
        return f"{row[2]:,.2f} ({row[3]} payments)" if row else "-"
    travel.add_row(f"before the burst ({report.before:%H:%M:%S})", str(report.email_before), mart(report.mart_before))
    travel.add_row("now", str(report.email_now), mart(report.mart_now))
    out.print(travel)
    steps = " · ".join(f"{name} {seconds:.1f}s" for name, seconds in report.steps)
    out.print(f"done in {report.seconds:.0f}s: {steps}")
    before = report.before.isoformat(sep=" ", timespec="seconds") if report.before else "..."
    out.print(f"""
Try next:
  . .venv/bin/activate && eval "$(medallion env)"
  medallion query "select customer_id, email, sys_start, sys_end from silver.dim_customer_hist for system_time all where customer_id = 1"
  medallion query "select * from gold.monthly_revenue_as_of('{before}') order by month, store_id"
  medallion simulate -n 200 && medallion run     # more history, then look again
  psql "$MEDALLION_WAREHOUSE_DSN"                # bronze, silver, gold; 'medallion down' stops the cluster
Data lives in {settings.home}.""", highlight=False, soft_wrap=True)
