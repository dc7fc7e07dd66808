"""A lost slot costs the changes of the gap, never the history: status says so, resync recovers.

The pipeline's slot is invalidated for real (max_slot_wal_keep_size lowered, WAL written past
it, a checkpoint), with changes made to the source in between. `medallion status` and
`medallion ingest` each say so in one line naming `medallion resync`; after it, silver as of a
time before the gap is what it was (row for row) and silver now is the source's content.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from medallion import pipeline
from medallion.settings import Settings
from medallion.source.cluster import EmbeddedCluster
from support import execute, medallion, one_error_line, query

HISTORIES = {"dim_customer": "customer", "dim_film": "film", "actor": "actor", "film_actor": "film_actor"}


def as_of_dump(dsn: str, at: object) -> dict[str, list[str]]:
    """The rows valid at `at` (sys_end and sys_known_to left out: when a version ended is known only later)."""
    dump = {}
    for base in HISTORIES:
        statement = sql.SQL("select (to_jsonb(t) - 'sys_end' - 'sys_known_to')::text from {}(%s) as t order by 1").format(
            sql.Identifier("silver", f"{base}_as_of"))
        dump[base] = [r[0] for r in query(dsn, statement, [at])]
    return dump


def invalidate(cluster: EmbeddedCluster, dsn: str, slot: str) -> None:
    """Lower max_slot_wal_keep_size and write WAL past it until the server gives up the slot."""
    admin = cluster.dsn("postgres")
    execute(admin, "alter system set max_slot_wal_keep_size = '1MB'")
    execute(admin, "select pg_reload_conf()")
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("create table wal_filler (payload text)")
            deadline = time.monotonic() + 120
            while conn.execute("select wal_status from pg_replication_slots where slot_name = %s",
                               [slot]).fetchone()[0] != "lost":
                assert time.monotonic() < deadline, "the slot was never invalidated"
                conn.execute("insert into wal_filler select repeat(md5(g::text), 64) from generate_series(1, 20000) g")
                conn.execute("select pg_switch_wal()")
                conn.execute("checkpoint")
            conn.execute("drop table wal_filler")
    finally:
        execute(admin, "alter system reset max_slot_wal_keep_size")
        execute(admin, "select pg_reload_conf()")


def test_invalidated_slot_then_resync_keeps_history_and_catches_up(settings: Settings, cli_env: dict[str, str],
                                                                   cluster: EmbeddedCluster) -> None:
    src, wh = settings.source_dsn or "", settings.warehouse_dsn or ""
    pipeline.run(settings)
    execute(src, "update customer set email = 'before.gap@example.org' where customer_id = 5")
    pipeline.run(settings)
    before_gap = query(src, "select clock_timestamp()")[0][0]
    kept = as_of_dump(wh, before_gap)

    # the gap: changes the lost slot will never deliver
    execute(src, "update customer set email = 'during.gap@example.org' where customer_id in (5, 6)")
    execute(src, "delete from film_actor where actor_id = 1")
    execute(src, "insert into actor (first_name, last_name) values ('Gap', 'Born')")
    execute(src, "update film set rental_rate = 0.01 where film_id = 3")
    invalidate(cluster, src, settings.slot)

    shown = medallion("status", env=cli_env)
    assert "slot invalidated" in shown.stderr and "medallion resync" in shown.stderr, shown.stdout + shown.stderr
    line = one_error_line(medallion("ingest", env=cli_env))
    assert f"slot {settings.slot} was invalidated" in line and "run 'medallion resync'" in line

    resynced = medallion("resync", env=cli_env)
    assert resynced.returncode == 0, resynced.stderr
    execute(src, "update customer set email = 'after.gap@example.org' where customer_id = 6")
    ran = medallion("run", env=cli_env)
    assert ran.returncode == 0, ran.stderr

    assert as_of_dump(wh, before_gap) == kept  # history before the gap: untouched
    now = query(src, "select clock_timestamp()")[0][0]
    for base, table in HISTORIES.items():
        source = query(src, sql.SQL("select count(*) from {}").format(sql.Identifier(table)))[0][0]
        assert query(wh, sql.SQL("select count(*) from {}(%s)").format(
            sql.Identifier("silver", f"{base}_as_of")), [now])[0][0] == source, base
    emails = query(wh, "select customer_id, email from silver.dim_customer where customer_id in (5, 6) order by 1")
    assert emails == [(5, "during.gap@example.org"), (6, "after.gap@example.org")]
    # a row the re-sync found unchanged keeps its version: no new one at the re-sync
    assert query(wh, "select count(*) from silver.dim_customer_hist where customer_id = 7")[0][0] == 1
    gone = query(wh, "select sys_end < 'infinity' from silver.film_actor_hist where actor_id = 1 and film_id = 1")
    assert gone == [(True,)]  # deleted during the gap: ended at the re-sync
    assert "gap: slot invalidated" in medallion("status", env=cli_env).stdout
