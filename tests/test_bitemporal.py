"""Two time axes: "as of" source time, and "as known at" warehouse time; and silver's horizon.

Several ingests and builds at known times k1 < k2 < k3 with changes between them, one of them
committed in the source before k1 but ingested only after it. As known at each k, silver and
gold must equal, row for row, what they held at k (md5 of ordered rows, kept at the time); as
of without known is unchanged. The horizon: an idle source moves it, a busy one holds it at the
last ingest, a build that stopped half-way does not let it pass the slowest table, and a query
past it warns (or, --strict, refuses).
"""

from __future__ import annotations

import time

from medallion import pipeline
from medallion.settings import Settings
from support import execute, medallion, one_error_line, query

MARTS = {"vw_monthly_revenue": ("monthly_revenue_as_of", "store_id, month"),
         "vw_top_titles": ("top_titles_as_of", "film_id, month"),
         "vw_store_scorecard": ("store_scorecard_as_of", "store_id, day")}
CUSTOMER = "customer_id, store_id, first_name, last_name, email, address_id, activebool, create_date, last_update, active"


def md5(dsn: str, statement: str, params: object = None) -> str:
    return query(dsn, f"select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from ({statement}) as t",
                 params)[0][0]


def held_now(dsn: str) -> dict[str, str]:
    """What silver and gold hold now: each mart, and the current customers."""
    found = {mart: md5(dsn, f"select * from gold.{mart}") for mart in MARTS}
    found["customers"] = md5(dsn, f"select {CUSTOMER} from silver.dim_customer")
    return found


def known_at(dsn: str, k: object) -> dict[str, str]:
    """The same, as the warehouse knew it at k: each mart as of now() known at k."""
    found = {mart: md5(dsn, f"select * from gold.{function}(now(), known => %(k)s)", {"k": k})
             for mart, (function, _) in MARTS.items()}
    found["customers"] = md5(dsn, f"select {CUSTOMER} from silver.dim_customer_as_of(now(), known => %(k)s)",
                             {"k": k})
    return found


def clock(dsn: str) -> object:
    return query(dsn, "select clock_timestamp()")[0][0]


def test_as_known_at_each_build_equals_what_silver_and_gold_held_then(settings: Settings) -> None:
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    pipeline.run(settings)
    # committed before k1, ingested after it: k1's silver and gold do not know it yet
    execute(src, "update payment set amount = amount + 10 where payment_id = (select min(payment_id) from payment "
                 "where payment_date >= '2022-07-01')")
    execute(src, "update customer set email = 'late@example.org' where customer_id = 1")
    late_commit = clock(src)
    k1 = clock(wh)
    held = {k1: held_now(wh)}

    pipeline.run(settings)
    execute(src, "update customer set email = 'second@example.org' where customer_id = 2")
    execute(src, "insert into payment (customer_id, staff_id, rental_id, amount, payment_date) "
                 "select customer_id, staff_id, rental_id, 3.33, '2022-07-20 10:00+00' from payment limit 1")
    pipeline.run(settings)
    k2 = clock(wh)
    held[k2] = held_now(wh)

    execute(src, "update customer set active = 0 where customer_id = 599")
    execute(src, "update film set rental_rate = rental_rate + 1 where film_id = 1")
    pipeline.run(settings)
    k3 = clock(wh)
    held[k3] = held_now(wh)

    time.sleep(0.1)
    for k, expected in held.items():
        assert known_at(wh, k) == expected, f"as known at {k}"
    assert held[k1] != held[k2] != held[k3]

    # the late change: as of just after its commit, known at k1, the old email; known now, the new one
    as_of = "select email from silver.dim_customer_as_of(%(t)s{known}) where customer_id = 1"
    assert query(wh, as_of.format(known=", known => %(k)s"), {"t": late_commit, "k": k1}) != [("late@example.org",)]
    assert query(wh, as_of.format(known=""), {"t": late_commit}) == [("late@example.org",)]
    # and the query command applies --known-at to every FOR SYSTEM_TIME
    env = settings_env(settings)
    statement = (f"select email from silver.dim_customer_hist for system_time as of '{late_commit.isoformat()}' "
                 "where customer_id = 1")
    then = medallion("query", "--format", "csv", "--known-at", k1.isoformat(), statement, env=env)
    now = medallion("query", "--format", "csv", statement, env=env)
    assert then.returncode == 0 and now.returncode == 0, then.stderr + now.stderr
    assert "late@example.org" not in then.stdout and "late@example.org" in now.stdout


def settings_env(settings: Settings) -> dict[str, str]:
    from support import environment

    return environment(settings)


def test_the_horizon_moves_with_an_idle_source_and_holds_at_the_slowest_table(settings: Settings) -> None:
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    env = settings_env(settings)
    pipeline.run(settings)
    first = query(wh, "select silver.horizon()")[0][0]
    assert first is not None and first <= clock(src)

    time.sleep(1.5)  # an idle source: the next run finds nothing, and the horizon still moves on
    pipeline.run(settings)
    idle = query(wh, "select silver.horizon()")[0][0]
    assert idle > first

    # a busy source: a change after the last ingest is past the horizon; asking about it warns
    execute(src, "update customer set email = 'busy@example.org' where customer_id = 3")
    committed = clock(src)
    assert query(wh, "select silver.horizon()")[0][0] < committed
    statement = f"select email from silver.dim_customer_hist for system_time as of '{committed.isoformat()}' " \
                "where customer_id = 3"
    warned = medallion("query", "--format", "csv", statement, env=env)
    assert warned.returncode == 0 and "warning: the answer may be incomplete" in warned.stderr
    assert "busy@example.org" not in warned.stdout
    line = one_error_line(medallion("query", "--strict", statement, env=env))
    assert "the answer may be incomplete" in line and "run 'medallion run' first" in line

    # a build that stopped half-way: one table on, the others not; the horizon does not pass them
    time.sleep(1.5)  # the ingest's "nothing pending" comes a second after the change's commit
    pipeline.ingest(settings)
    pipeline.build(settings, select=("dim_customer_hist",), tests=False)
    assert query(wh, "select silver.horizon()")[0][0] < committed
    assert query(wh, "select complete_to >= %s from medallion.build_watermark where model = "
                     "'silver.dim_customer_hist'", [committed]) == [(True,)]
    pipeline.build(settings)
    assert query(wh, "select silver.horizon()")[0][0] >= committed
    shown = medallion("status", env=env)
    assert "silver: complete up to" in shown.stdout
