"""FOR SYSTEM_TIME on PostgreSQL: each form returns the rows SQL:2011 defines, on a scripted history.

The history (tests/timetravel_history.py) has explicit sys_start/sys_end, so the tests stand
alone (no silver models needed). Periods are half-open: [sys_start, sys_end).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import psycopg
import pytest

from medallion.errors import (NotSystemVersioned, QueryFailed, QueryParseError, UnknownTable,
                              UnsupportedTemporalClause)
from medallion.query import INFINITY, Catalog, load_catalog, rewrite, run_query
from medallion.settings import Settings
from medallion.source.cluster import EmbeddedCluster
from timetravel_history import history_warehouse

@pytest.fixture(scope="module")
def warehouse(cluster: EmbeddedCluster) -> Iterator[Settings]:
    """The scripted history, in a warehouse of its own that this module shares (queries run read-only)."""
    with history_warehouse(cluster, "tt_api") as settings:
        yield settings


def names(settings: Settings, sql_text: str, params: object = None) -> set[tuple]:
    return set(run_query(settings, sql_text, params).rows)  # type: ignore[arg-type]


CUSTOMERS = "select customer_id, name from hist.customer_hist for system_time {clause}"


@pytest.mark.parametrize(("clause", "expected"), [
    # AS OF t: sys_start <= t and sys_end > t
    ("as of '2026-03-01 00:00+00'", {(1, "Anna"), (2, "Bob"), (3, "Cyrus")}),  # Ann and Cyd end exactly here
    ("as of '2026-02-28 23:59:59.999999+00'", {(1, "Ann"), (2, "Bob"), (3, "Cyd")}),
    ("as of '2026-04-01 00:00+00'", {(1, "Anna"), (3, "Cyrus")}),  # Bob's version ended at Apr 1
    ("as of '2025-12-31 23:59:59+00'", set()),
    ("as of timestamp '2026-03-01 01:00+02'", {(1, "Ann"), (2, "Bob"), (3, "Cyd")}),  # the offset counts
    ("as of now() - interval '1 day'", {(1, "Anna"), (3, "Cyrus")}),
    # FROM a TO b: sys_start < b and sys_end > a (versions overlapping [a, b))
    ("from '2026-02-01 00:00+00' to '2026-03-01 00:00+00'", {(1, "Ann"), (2, "Bob"), (3, "Cyd")}),
    # BETWEEN a AND b: sys_start <= b and sys_end > a (also versions starting exactly at b)
    ("between '2026-02-01 00:00+00' and '2026-03-01 00:00+00'",
     {(1, "Ann"), (1, "Anna"), (2, "Bob"), (3, "Cyd"), (3, "Cyrus")}),
    # CONTAINED IN (a, b): sys_start >= a and sys_end <= b
    ("contained in ('2026-02-01 00:00+00', '2026-04-01 00:00+00')", {(2, "Bob"), (3, "Cyd")}),
    ("contained in ('2026-01-01 00:00+00', '2026-02-01 00:00+00')", {(3, "Cy")}),
    # ALL: every version
    ("all", {(1, "Ann"), (1, "Anna"), (2, "Bob"), (3, "Cy"), (3, "Cyd"), (3, "Cyrus")}),
])
def test_each_form_returns_the_rows_the_standard_defines(warehouse: Settings, clause: str,
                                                         expected: set[tuple]) -> None:
    assert names(warehouse, CUSTOMERS.format(clause=clause)) == expected


def test_open_versions_end_at_infinity(warehouse: Settings) -> None:
    """psycopg cannot load 'infinity' as a datetime; run_query returns INFINITY (datetime.max, UTC)."""
    rows = names(warehouse, "select name, sys_end from hist.customer_hist for system_time as of '2026-05-01' "
                            "where customer_id = 1")
    assert rows == {("Anna", INFINITY)}


def test_from_to_excludes_what_between_includes_at_the_upper_bound(warehouse: Settings) -> None:
    """FROM a TO b is [a, b); BETWEEN a AND b is [a, b]: versions starting at b differ."""
    period = "'2026-02-01 00:00+00' {} '2026-03-01 00:00+00'"
    from_to = names(warehouse, CUSTOMERS.format(clause="from " + period.format("to")))
    between = names(warehouse, CUSTOMERS.format(clause="between " + period.format("and")))
    assert between - from_to == {(1, "Anna"), (3, "Cyrus")}


def test_parameters_are_instants(warehouse: Settings) -> None:
    at = datetime(2026, 2, 10, tzinfo=timezone.utc)
    assert names(warehouse, CUSTOMERS.format(clause="as of %(at)s"), {"at": at}) == {
        (1, "Ann"), (2, "Bob"), (3, "Cyd")}
    with pytest.raises(UnsupportedTemporalClause, match=r"positional %s parameter: use a named one"):
        run_query(warehouse, CUSTOMERS.format(clause="as of %s"), ["2026-02-10 00:00+00"])


JOIN_AT_TWO_TIMES = (
    "select c.customer_id, c.name, a.city "
    "from hist.customer_hist for system_time as of '2026-02-10 00:00+00' as c "
    "join hist.address_hist for system_time as of '2026-03-10 00:00+00' as a on a.customer_id = c.customer_id"
)


def test_join_of_two_versioned_tables_at_two_times(warehouse: Settings) -> None:
    """Each table gets its own instant, inside its own derived table."""
    result = run_query(warehouse, JOIN_AT_TWO_TIMES)
    assert ("(SELECT * FROM hist.customer_hist WHERE sys_start <= CAST('2026-02-10 00:00+00' AS TIMESTAMPTZ) "
            "AND sys_end > CAST('2026-02-10 00:00+00' AS TIMESTAMPTZ)) AS c") in result.statement
    assert ("(SELECT * FROM hist.address_hist WHERE sys_start <= CAST('2026-03-10 00:00+00' AS TIMESTAMPTZ) "
            "AND sys_end > CAST('2026-03-10 00:00+00' AS TIMESTAMPTZ)) AS a") in result.statement
    assert result.columns == ["customer_id", "name", "city"]
    # Ann's name of Feb 10 with her city of Mar 10; Cyd with Bergen; Bob has no address.
    assert set(result.rows) == {(1, "Ann", "Rome"), (3, "Cyd", "Bergen")}


def test_outer_join_keeps_the_predicate_on_its_own_table(warehouse: Settings) -> None:
    """In the outer WHERE, a predicate on the right side would turn a LEFT JOIN into an inner one."""
    rows = names(warehouse,
                 "select c.name, a.city from hist.customer_hist for system_time as of '2026-02-10 00:00+00' c "
                 "left join hist.address_hist for system_time as of '2026-01-10 00:00+00' a using (customer_id)")
    assert rows == {("Ann", "Oslo"), ("Bob", None), ("Cyd", "Bergen")}


def test_same_table_at_two_times_shows_what_changed(warehouse: Settings) -> None:
    rows = names(warehouse,
                 "select was.customer_id, was.name, now_.name "
                 "from hist.customer_hist for system_time as of '2026-01-15 00:00+00' as was "
                 "join hist.customer_hist for system_time as of '2026-04-15 00:00+00' as now_ "
                 "on now_.customer_id = was.customer_id where was.name <> now_.name")
    assert rows == {(1, "Ann", "Anna"), (3, "Cy", "Cyrus")}


def test_subquery_and_cte(warehouse: Settings) -> None:
    """Customers of Feb 15 that still exist on Apr 15, by the name they had then."""
    rows = names(warehouse,
                 "with then_ as (select customer_id, name from hist.customer_hist "
                 "               for system_time as of '2026-02-15 00:00+00') "
                 "select name from then_ where customer_id in "
                 "(select customer_id from hist.customer_hist for system_time as of '2026-04-15 00:00+00')")
    assert rows == {("Ann",), ("Cyd",)}


def test_unaliased_table_keeps_its_qualified_column_references(warehouse: Settings) -> None:
    rows = names(warehouse,
                 "select customer_hist.name, hist.customer_hist.customer_id "
                 "from hist.customer_hist for system_time as of '2026-01-15 00:00+00' "
                 "where hist.customer_hist.customer_id = 1")
    assert rows == {("Ann", 1)}


def test_instant_from_another_table_uses_lateral(warehouse: Settings) -> None:
    """AS OF r.rented_at: each rental sees the customer's name at rental time."""
    result = run_query(warehouse,
                       "select r.rental_id, c.name from hist.rental r "
                       "join hist.customer_hist for system_time as of r.rented_at c on c.customer_id = r.customer_id")
    assert "JOIN LATERAL (SELECT * FROM hist.customer_hist" in result.statement
    assert set(result.rows) == {(10, "Ann"), (11, "Anna"), (12, "Cy")}


def test_from_now_minus_interval_to_now(warehouse: Settings) -> None:
    """sqlglot reads "interval '400 days' TO now()" as an interval range; the rewrite splits it back."""
    rows = names(warehouse, CUSTOMERS.format(clause="from now() - interval '1 day' to now()"))
    assert rows == {(1, "Anna"), (3, "Cyrus")}


def test_catalog_discovers_only_tables_with_timestamptz_periods(warehouse: Settings) -> None:
    with psycopg.connect(warehouse.warehouse_dsn) as conn:
        catalog = load_catalog(conn)
    assert catalog.versioned == {("hist", "customer_hist"), ("hist", "address_hist")}
    assert ("hist", "customer") in (catalog.relations or set())


def test_clause_on_a_view_names_it_and_the_history_table(warehouse: Settings) -> None:
    with pytest.raises(NotSystemVersioned) as caught:
        run_query(warehouse, "select * from hist.customer for system_time as of now()")
    assert str(caught.value) == ("hist.customer has no system-time history (no sys_start/sys_end timestamptz "
                                 "columns): use hist.customer_hist")
    assert caught.value.table == "hist.customer"


def test_clause_on_a_plain_table_and_on_text_periods(warehouse: Settings) -> None:
    for table in ("hist.rental", "hist.text_periods"):
        with pytest.raises(NotSystemVersioned, match=rf"^{table} has no system-time history"):
            run_query(warehouse, f"select * from {table} for system_time all")


def test_unknown_table(warehouse: Settings) -> None:
    with pytest.raises(UnknownTable, match=r"^hist\.nope does not exist in the warehouse"):
        run_query(warehouse, "select * from hist.nope for system_time all")


def test_queries_run_read_only(warehouse: Settings) -> None:
    with pytest.raises(QueryFailed, match="read-only transaction"):
        run_query(warehouse, "delete from hist.rental")


def test_plain_sql_passes_through_unchanged(warehouse: Settings) -> None:
    sql_text = "select name from hist.customer where name like 'C%' order by 1"
    result = run_query(warehouse, sql_text)
    assert result.statement == sql_text
    assert result.rows == [("Cyrus",)]


# Pure rewrite: no database needed.

CATALOG = Catalog.of("silver.dim_customer_hist", relations=["silver.dim_customer_hist", "silver.dim_customer"],
                     search_path=["public", "silver"])


def test_rewrite_resolves_unqualified_names_by_search_path() -> None:
    assert rewrite("select * from dim_customer_hist for system_time as of '2026-01-01' h", CATALOG) == (
        "SELECT * FROM (SELECT * FROM dim_customer_hist WHERE sys_start <= CAST('2026-01-01' AS TIMESTAMPTZ) "
        "AND sys_end > CAST('2026-01-01' AS TIMESTAMPTZ)) AS h")


def test_rewrite_all_just_drops_the_clause() -> None:
    assert rewrite("select * from silver.dim_customer_hist for system_time all as h", CATALOG) == (
        "SELECT * FROM silver.dim_customer_hist AS h")


@pytest.mark.parametrize(("sql_text", "error", "message"), [
    ("select * from dim_customer for system_time all", NotSystemVersioned,
     "silver.dim_customer has no system-time history (no sys_start/sys_end timestamptz columns): "
     "use silver.dim_customer_hist"),
    ("with c as (select 1) select * from c for system_time all", UnsupportedTemporalClause,
     "c is a CTE: put FOR SYSTEM_TIME on the history table inside the CTE"),
    ("select * from silver.dim_customer_hist for version as of 3", UnsupportedTemporalClause,
     "silver.dim_customer_hist: only FOR SYSTEM_TIME AS OF / FROM..TO / BETWEEN..AND / CONTAINED IN / ALL "
     "are supported, not FOR VERSION AS OF 3"),
])
def test_rewrite_errors_name_the_table(sql_text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        rewrite(sql_text, CATALOG)
    assert str(caught.value) == message


def test_rewrite_splits_an_interval_before_to() -> None:
    assert rewrite("select 1 from silver.dim_customer_hist for system_time "
                   "from now() - interval '30 days' to now()", CATALOG) == (
        "SELECT 1 FROM (SELECT * FROM silver.dim_customer_hist WHERE sys_start < CAST(CURRENT_TIMESTAMP AS TIMESTAMPTZ) "
        "AND sys_end > CAST(CURRENT_TIMESTAMP - INTERVAL '30 DAYS' AS TIMESTAMPTZ)) AS dim_customer_hist")
    with pytest.raises(UnsupportedTemporalClause, match="put the FROM instant in parentheses"):
        rewrite("select 1 from silver.dim_customer_hist for system_time "
                "from now() - interval '30' day to now() - interval '1 day'", CATALOG)


@pytest.mark.parametrize(("sql_text", "message"), [
    ("select 1; select 2", "expected one SQL statement, got 2: run them one at a time"),
    ("", "expected one SQL statement, got 0: run them one at a time"),
    ("select * from", "cannot parse the query at line 1, column"),
])
def test_parse_errors_are_one_line(sql_text: str, message: str) -> None:
    with pytest.raises(QueryParseError) as caught:
        rewrite(sql_text, CATALOG)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
