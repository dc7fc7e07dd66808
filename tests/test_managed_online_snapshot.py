"""Online snapshots on a source like a managed one (tests/managed_source.py: PostgreSQL 15 and 16,
no superuser, the pipeline logged in as the capture role, tables of an owner that is not a
superuser): a table the owner creates while `medallion run --follow` runs, published later by
its owner with `prepare-source`, read by an online snapshot that is SIGKILLed at random points
and resumed; then `resync --table` of it under a concurrent workload. One test per server: the
scenario builds on itself, and each server costs a full pipeline."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from managed_source import ManagedPipeline, user_environment
from managed_support import assert_silver_is_the_source, ok, source_rows, start_capture
from online_workload import Workload, bronze_state, snapshot_done, wait
from support import query

pytestmark = pytest.mark.file_seconds(110)  # both servers

LATE = "Late Line"
TABLE = sql.Identifier("ops", LATE)


def _follow(managed: ManagedPipeline, log: Path) -> subprocess.Popen:
    """`medallion run --follow` from the user's folder, as the capture role, in small snapshot chunks."""
    env = user_environment(managed.capture_dsn, managed.warehouse_dsn, managed.slot, managed.folder / ".medallion")
    env["MEDALLION_SNAPSHOT_CHUNK_ROWS"] = "3"
    return subprocess.Popen([sys.executable, "-m", "medallion.cli", "run", "--follow"], env=env, cwd=managed.folder,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def _streaming(managed: ManagedPipeline) -> bool:
    """The follower's ingester holds its slot: it has checked the publication and streams."""
    with managed.server.dba(managed.database) as conn:
        return bool(conn.execute("select count(*) > 0 from pg_replication_slots where slot_name = %s and active",
                                 [managed.slot]).fetchone()[0])


def _chunks_read(wh: str) -> int:
    """Chunks the online snapshots have read so far (0 before the first)."""
    try:
        return int(query(wh, "select coalesce(sum(chunks), 0) from bronze.online_snapshot")[0][0])
    except psycopg.errors.UndefinedTable:
        return 0


def _bronze_of(wh: str, table: str) -> str:
    return query(wh, "select bronze_table from bronze.online_snapshot where table_name = %s limit 1", [table])[0][0]


def _history_md5(wh: str, like: str) -> list[tuple]:
    """md5 of each silver history (and its bronze table) whose name matches `like`: rows as text, sorted."""
    names = query(wh, "select table_schema, table_name from information_schema.tables where "
                      "((table_schema = 'silver' and table_name ~ '_hist') or table_schema = 'bronze') "
                      "and table_name ilike %s order by 1, 2", [like])
    assert names, like
    return [(schema, name, query(wh, sql.SQL("select md5(coalesce(string_agg(d::text, '|' order by d::text), '')) "
                                             "from {} as d").format(sql.Identifier(schema, name)))[0][0])
            for schema, name in names]


# on PostgreSQL 16 only: the longest test of the suite's managed lane (75-100 s a version), and
# PostgreSQL 15 runs the same online snapshot, SIGKILLs and resync on the embedded cluster
# (tests/test_bronze_online_snapshot.py); the other managed tests run on both versions
@pytest.mark.parametrize("managed_server", ["16"], indirect=True, ids=["pg16"])
def test_a_late_table_survives_kills_and_resyncs_alone(managed: ManagedPipeline) -> None:
    wh = managed.warehouse_dsn
    start_capture(managed)  # ops.customer and ops."Order Line": granted, published, in silver
    logs = [managed.folder / "follow0.log"]
    follower = _follow(managed, logs[0])
    workload = Workload(managed.owner_dsn, TABLE, 1000, seed=int(managed.server.version))
    try:
        wait(lambda: _streaming(managed))  # a follower started while a keyed table is unpublished refuses
        # the owner creates a table while capture runs; its first rows are written before it is published
        managed.owner(sql.SQL("create table {} (region text, seq int, v text, primary key (region, seq)); "
                              "insert into {} select r, seq, 'v0' from unnest(array['north', 'South', 'éast']) as r, "
                              "generate_series(1, 1000) as seq").format(TABLE, TABLE))
        workload.start()
        ok(managed.medallion("grant", as_owner=True))
        ok(managed.medallion("prepare-source", as_owner=True))  # publishes it: the online snapshot starts
        # SIGKILL at random points of the snapshot (3,000 rows in chunks of 3), each once this
        # follower has read a chunk, then carry on
        chance = random.Random(int(managed.server.version))
        killed_during = 0
        for _ in range(3):
            read = _chunks_read(wh)
            wait(lambda: _chunks_read(wh) > read or snapshot_done(wh), 90)
            time.sleep(chance.uniform(0.05, 0.8))
            if snapshot_done(wh):
                break
            follower.send_signal(signal.SIGKILL)
            follower.wait(timeout=30)
            killed_during += 1
            logs.append(managed.folder / f"follow{len(logs)}.log")
            follower = _follow(managed, logs[-1])
        wait(lambda: snapshot_done(wh), 180)
        workload.stop.set()
        workload.join()
        managed.owner(sql.SQL("insert into {} values ('after', 1, 'last'); "
                              "update ops.customer set note = 'late' where code = 'c-1'").format(TABLE))
        # the follower, not only the `run` below, takes that last transaction (one, so its row is enough)
        last = sql.SQL("select count(*) from {} where full_row->>'region' = 'after'").format(
            sql.Identifier("bronze", _bronze_of(wh, LATE)))
        wait(lambda: query(wh, last)[0][0] > 0, 60)
    finally:
        workload.stop.set()
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=60)
    said = "".join(log.read_text() for log in logs)
    assert killed_during >= 2, said
    assert f"online snapshot of ops.\"{LATE}\"" in said and "done" in said, said
    ok(managed.medallion("run"))
    bronze = _bronze_of(wh, LATE)
    # nothing doubled: one bronze row per (commit_lsn, ordinal), each key snapshotted once
    for name in query(wh, "select table_name from information_schema.tables where table_schema = 'bronze' "
                          "and table_name like 'br\\_%%\\_cdc'"):
        assert query(wh, sql.SQL("select commit_lsn, ordinal from {} group by 1, 2 having count(*) > 1").format(
            sql.Identifier("bronze", name[0]))) == [], name
    assert query(wh, sql.SQL("select full_row->>'region', full_row->>'seq' from {} where op = 'R' and xid is not null "
                             "group by 1, 2 having count(*) > 1").format(sql.Identifier("bronze", bronze))) == []
    # nothing lost: bronze's latest rows and silver's current view are the source
    assert sorted(bronze_state(wh, bronze), key=repr) == source_rows(managed, "ops", LATE)
    assert_silver_is_the_source(managed, ["customer", "Order Line", LATE])

    # resync --table of the late table under a workload on it: the other tables' histories stay as they were
    others = _history_md5(wh, "%customer%") + _history_md5(wh, "%order%line%")
    workload = Workload(managed.owner_dsn, TABLE, 1000, seed=7)
    workload.start()
    try:
        resynced = ok(managed.medallion("resync", "--table", f'ops."{LATE}"'))
    finally:
        workload.stop.set()
        workload.join()
    assert f"re-synced ops.{LATE} online" in resynced and workload.done > 20, (resynced, workload.done)
    ok(managed.medallion("run"))
    assert sorted(bronze_state(wh, bronze), key=repr) == source_rows(managed, "ops", LATE)
    assert_silver_is_the_source(managed, ["customer", "Order Line", LATE])
    assert _history_md5(wh, "%customer%") + _history_md5(wh, "%order%line%") == others
