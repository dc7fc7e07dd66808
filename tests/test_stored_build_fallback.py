"""`medallion build` without starting dbt (medallion/stored_build.py), continued from
tests/test_stored_build.py (its schema, project and helpers; a file of its own so that `make
test`'s two workers share the stored-build tests, each of which starts dbt about ten times):
whatever the stored statements cannot carry goes to dbt, and says why in one line: a changed
project file, --skip-tests, --full-tests, a mart dropped by hand, --dbt, a model only dbt
refreshes. A failing test fails the build, naming it, as dbt build would, and its stretch stays
untested.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medallion.settings import Settings
from support import execute, medallion, query
from test_stored_build import STORED, _build, _marts_follow_the_source, _project, _start

pytestmark = pytest.mark.file_seconds(135)


def test_what_the_stored_statements_cannot_carry_goes_to_dbt(blank_settings: Settings, tmp_path: Path) -> None:
    settings, root = _project(tmp_path, blank_settings)
    env = _start(settings)
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    execute(src, "update shop.orders set total = 3 where region = 'EU'")
    assert STORED in _build(env)  # a mart's first build already stores its step for a change
    # a mart whose last build stored no step (an earlier version's full build did not): dbt, saying so
    execute(wh, "update medallion.follow_step set step_sql = null where model = 'gold.orders_by_day'")
    execute(src, "update shop.orders set total = 3.25 where region = 'EU'")
    how = _build(env)
    assert "was built whole at the last build (its first build or a --full-refresh)" in how, how
    _marts_follow_the_source(settings)
    execute(src, "update shop.orders set total = 3.5 where region = 'EU'")
    assert STORED in _build(env)

    # a failing test fails the build, in one line naming it, and its stretch stays untested
    execute(src, "insert into shop.orders values ('EU', 8, 'C-1', 'new', '2026-01-09 09:00+00', -1)")
    assert medallion("ingest", env=env).returncode == 0
    failed = medallion("build", env=env)
    assert failed.returncode == 1 and "no_negative_totals" in failed.stderr, failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1 and "Traceback" not in failed.stderr
    untested = query(wh, "select model from medallion.build_watermark where model like '%orders%' "
                         "and tested_to is distinct from last_commit_lsn")
    assert untested, "the failing stretch must be tested again by the next build"
    execute(src, "update shop.orders set total = 1 where region = 'EU' and order_id = 8")
    assert STORED in _build(env)
    assert not query(wh, "select model from medallion.build_watermark where tested_to is distinct from last_commit_lsn")
    _marts_follow_the_source(settings)

    # any change to the project's files: dbt
    model = root / "models" / "gold" / "orders_by_day.sql"
    model.write_text("-- totals per day\n" + model.read_text(encoding="utf-8"), encoding="utf-8")
    how = _build(env, "--skip-tests")
    assert "dbt started: the project's files changed since the last build (models/gold/orders_by_day.sql)" in how
    how = _build(env)
    assert "dbt started: the last build ran no tests it could store (--skip-tests" in how, how
    execute(src, "update shop.orders set total = 4 where region = 'EU'")
    assert STORED in _build(env)
    assert "dbt started: --full-tests checks whole tables" in _build(env, "--full-tests")
    execute(src, "update shop.orders set total = 4.5 where region = 'EU'")
    assert STORED in _build(env)  # the tests stored before it are kept

    # a mart dropped by hand: its stored step fails, nothing half-applied, and dbt rebuilds it
    execute(wh, "drop table gold.orders_by_day")
    execute(src, "update shop.orders set total = 5 where region = 'EU'")
    how = _build(env)
    assert "dbt started: the stored statements of gold.orders_by_day failed (" in how, how
    assert "so dbt rebuilds it" in how, how
    _marts_follow_the_source(settings)

    # --dbt: always dbt
    assert "dbt started: asked for with --dbt" in _build(env, "--dbt")

    # a plain table beside the marts: refilled from its compiled SELECT, without dbt
    (root / "models" / "gold" / "plain.sql").write_text(
        "{{ config(materialized='table') }}\nselect region, count(*) as n from {{ ref('shop__orders') }} group by 1\n",
        encoding="utf-8")
    assert "(models/gold/plain.sql)" in _build(env)
    execute(src, "insert into shop.orders values ('US', 9, 'C-1', 'new', '2026-01-09 09:00+00', 2)")
    assert STORED in _build(env)
    assert query(wh, "select * from gold.plain order by 1") == \
        query(src, "select region, count(*) from shop.orders group by 1 order by 1")

    # a model only dbt refreshes: every build starts dbt, and its last line says which and why
    (root / "models" / "gold" / "grows.sql").write_text(
        "{{ config(materialized='incremental') }}\nselect 1 as one\n", encoding="utf-8")
    assert "(models/gold/grows.sql)" in _build(env)
    assert "dbt started: the model grows is materialized as incremental, which only dbt refreshes" in _build(env)
