"""`medallion run --follow`: one long-running process that keeps silver and gold up with the
source under simulated traffic, stops cleanly on SIGTERM, and leaves silver and gold exactly as a
--full-refresh from the same bronze makes them (every table, partition and view, row for row).

A schema change in the middle sends the follower back to a dbt build for that stretch, and it
goes on following afterwards.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from medallion import pipeline
from medallion.settings import Settings
from pagila_example import api as example
from support import execute, query, schema_dump

BOOKKEEPING = {"follow_step", "stored_build"}
REVENUE = ("select sum(p.amount) from payment as p join rental as r using (rental_id) "
           "join inventory as i using (inventory_id)")  # when each step was stored differs between the two runs


def warehouse_dump(settings: Settings) -> dict[str, list[str]]:
    """silver and gold row for row; of the watermarks, how far each model applied bronze (the
    source time they are complete to moves on its own with an idle source: the horizon)."""
    dump = {}
    for schema in ("silver", "gold"):
        for name, rows in schema_dump(settings.warehouse_dsn or "", schema).items():
            dump[f"{schema}.{name}"] = rows
    for name, rows in schema_dump(settings.warehouse_dsn or "", "medallion").items():  # the marts' own state
        if name not in BOOKKEEPING | {"build_watermark"}:
            dump[f"medallion.{name}"] = rows
    dump["medallion.build_watermark"] = query(settings.warehouse_dsn, "select model, bronze_table, last_commit_lsn "
                                                                      "from medallion.build_watermark order by 1")
    return dump


def nickname(wh: str) -> str | None:
    """dim_staff's new column, or None while silver does not have it yet."""
    try:
        return query(wh, "select nickname from silver.dim_staff where staff_id = 1")[0][0]
    except psycopg.errors.UndefinedColumn:
        return None


def wait_for(check: callable, what: str, timeout: float = 120.0) -> None:
    """Poll until check() is true; a generous bound only (speed is measured in `make bench`)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not seen within {timeout:.0f}s"
        time.sleep(0.2)


def test_follow_under_simulate_then_stop_equals_a_full_refresh(settings: Settings, cli_env: dict[str, str]) -> None:
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    log = Path(tempfile.mkstemp(prefix="follow-", suffix=".log")[1])
    with log.open("w") as stderr:
        follower = subprocess.Popen([sys.executable, "-m", "medallion.cli", "run", "--follow"], env=cli_env,
                                    cwd=tempfile.gettempdir(), stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        wait_for(lambda: "following the source" in log.read_text(), "the follower's start")

        # a change lands in silver's current view and in gold without any build command
        execute(src, "update customer set email = 'followed@example.org' where customer_id = 7")
        execute(src, "update payment set amount = amount + 100 where payment_id = 17503")
        wait_for(lambda: query(wh, "select email from silver.dim_customer where customer_id = 7")
                 == [("followed@example.org",)], "the customer's new email in silver")
        wait_for(lambda: query(wh, "select sum(revenue) from gold.vw_monthly_revenue") == query(src, REVENUE),
                 "the payment's new amount in gold")

        # traffic, and a schema change in the middle of it (a dbt build carries that stretch)
        example.simulate(settings, seed=7, transactions=60, rate=20)
        execute(src, "alter table staff add column nickname text")
        execute(src, "update staff set nickname = 'Mikey' where staff_id = 1")
        example.simulate(settings, seed=8, transactions=60, rate=20)
        execute(src, "update customer set email = 'last@example.org' where customer_id = 8")
        wait_for(lambda: query(wh, "select email from silver.dim_customer where customer_id = 8")
                 == [("last@example.org",)], "the last change in silver")
        wait_for(lambda: nickname(wh) == "Mikey", "the new column's value in silver")
    finally:
        follower.send_signal(signal.SIGTERM)
        out, _ = follower.communicate(timeout=120)
    stderr_text = log.read_text()
    assert follower.returncode == 0, stderr_text
    assert "Traceback" not in stderr_text
    assert "stopped:" in out and "dbt builds" in out, out
    assert "schema change" in stderr_text, stderr_text  # the fallback said why it ran dbt

    # bronze got everything the source committed, and silver applied all of it
    assert query(wh, "select count(*) from silver.dim_customer") == query(src, "select count(*) from customer")
    followed = warehouse_dump(settings)
    pipeline.build(settings, tests=False)  # continues from where the follower stopped: nothing left
    assert warehouse_dump(settings) == followed
    pipeline.build(settings, full_refresh=True)
    rebuilt = warehouse_dump(settings)
    assert rebuilt.keys() == followed.keys()
    for name in followed:
        assert rebuilt[name] == followed[name], name
