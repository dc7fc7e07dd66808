"""The demo's burst and report on a private pipeline (`make demo` runs the same on the embedded default)."""

from __future__ import annotations

from decimal import Decimal

from medallion import pipeline
from medallion.settings import Settings
from pagila_example.demo import DemoReport, _collect, burst
from support import query


def test_burst_shows_in_every_layer_and_in_time_travel(settings: Settings) -> None:
    pipeline.ingest(settings)
    quick = pipeline.build(settings, tests=False)  # models only; the run below tests
    assert quick.count("model") >= 10 and quick.count("test") == 0
    report = DemoReport(before=query(settings.source_dsn, "select clock_timestamp()")[0][0])
    assert burst(settings) == ["new rental and its payment", "a return", "customer email change",
                               "film price change"]
    ran = pipeline.run(settings)
    assert ran.ingest.changes == 5  # rental, payment, return, email, price: one change each
    _collect(settings, report)

    assert report.email_before == "MARY.SMITH@sakilacustomer.org"
    assert report.email_now == "mary.smith@example.org"
    store, month, revenue_before, payments_before = report.mart_before
    assert (store, str(month)) == (1, "2022-07-01")
    assert report.mart_now[3] == payments_before + 1
    new_payment = query(settings.source_dsn, "select amount from payment where payment_date = '2022-07-30 18:00+00'")
    assert report.mart_now[2] - revenue_before == new_payment[0][0] > Decimal(0)
    assert [table for table, _ in report.layers["gold"]] == ["vw_monthly_revenue", "vw_store_scorecard",
                                                              "vw_top_titles"]
    assert len(report.layers["bronze"]) == 15
    assert len(report.top_months) == 3 and report.top_months[0][1] >= report.top_months[1][1]
