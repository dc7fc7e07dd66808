"""Exactly-once delivery across SIGKILLs of the ingester, checked against an independent decode.

A second "witness" slot is created right after the initial snapshot and never consumed until
the end: what it decodes is the ground truth of what the source committed. Bronze's stream
rows must equal it change for change (commit position, ordinal, table, operation), none
missing and none twice, however often the ingester is killed.
"""

from __future__ import annotations

import pytest

import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import psycopg

from medallion import pipeline
from medallion.bronze.decoders import Wal2jsonDecoder
from medallion.bronze.events import Begin, Change, Commit
from medallion.naming import bronze_table
from pagila_example.pagila import TABLES as PAGILA_TABLES
from medallion.settings import Settings
from support import execute, query

# every bronze test runs with both output plugins: pgoutput (the default) and wal2json
pytestmark = pytest.mark.parametrize("plugin", ["pgoutput", "wal2json"], indirect=True)

WITNESS_OPTIONS = "'format-version', '2', 'include-timestamp', 'true', 'include-xids', 'true', 'include-lsn', 'true'"


def workload(dsn: str, seed: int, transactions_wanted: int, stop: threading.Event) -> None:
    """Updates, deletes, inserts (several rows per statement too) and a TRUNCATE, each its own txn."""
    rng = random.Random(seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for step in range(transactions_wanted):
            if stop.is_set():
                return
            kind = step % 6
            if step == transactions_wanted // 2:
                conn.execute("truncate film_category")
            elif kind == 0:
                conn.execute("update customer set email = %s where customer_id = %s",
                             [f"c{step}@example.com", rng.randint(1, 599)])
            elif kind == 1:
                conn.execute("insert into actor (first_name, last_name) select 'A' || g, 'B' || %s "
                             "from generate_series(1, %s) g", [step, rng.randint(2, 30)])
            elif kind == 2:
                conn.execute("update film set rental_rate = rental_rate + 0.01 where film_id between %s and %s",
                             [x := rng.randint(1, 990), x + rng.randint(0, 8)])
            elif kind == 3:
                conn.execute("delete from payment where payment_id in "
                             "(select payment_id from payment order by payment_id offset %s limit %s)",
                             [rng.randint(0, 15000), rng.randint(1, 5)])
            elif kind == 4:
                with conn.transaction():
                    conn.execute("update rental set return_date = now() where rental_id = %s", [rng.randint(1, 16000)])
                    conn.execute("update customer set active = 1 - active where customer_id = %s", [rng.randint(1, 599)])
            else:
                conn.execute("delete from actor where actor_id in (select max(actor_id) from actor)")
            time.sleep(rng.uniform(0.0, 0.02))


def witness_changes(settings: Settings, witness: str) -> Counter:
    """What the source committed, decoded independently (wal2json over the SQL peek function):
    (commit position, ordinal in the transaction, bronze table, op) of every captured change."""
    decoder = Wal2jsonDecoder()
    with psycopg.connect(settings.source_dsn) as conn:
        rows = conn.execute(
            f"select (lsn - '0/0'::pg_lsn)::bigint, data "
            f"from pg_logical_slot_peek_changes(%s, null, null, {WITNESS_OPTIONS})", [witness]).fetchall()
    expected: Counter = Counter()
    changes: list[tuple[int, str, str]] = []
    ordinal = 0
    for lsn, data in rows:
        for event in decoder.feed(data, lsn):
            if isinstance(event, Begin):
                changes, ordinal = [], 0
            elif isinstance(event, Change):
                ordinal += 1
                ref = event.relation
                table = "payment" if ref.table.startswith("payment_p") else ref.table
                if ref.schema == "public" and table in PAGILA_TABLES:
                    changes.append((ordinal, bronze_table("public", table), event.op))
            elif isinstance(event, Commit):
                for ordinal_, target, op in changes:
                    expected[(event.commit_lsn, ordinal_, target, op)] += 1
    return expected


def bronze_stream_changes(settings: Settings) -> Counter:
    found: Counter = Counter()
    for table in PAGILA_TABLES:
        for commit_lsn, ordinal, op in query(
                settings.warehouse_dsn,
                f"select commit_lsn, ordinal, op from bronze.{bronze_table('public', table)} where op <> 'R'"):
            found[(commit_lsn, ordinal, bronze_table('public', table), op)] += 1
    return found


def start_ingester(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "medallion.cli", "ingest", "--follow", "--batch-size", "40", "--wait", "30"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_at_random_points_loses_and_doubles_nothing(settings: Settings, cli_env: dict[str, str]) -> None:
    pipeline.ingest(settings)  # the initial snapshot
    witness = f"{settings.slot}_witness"
    execute(settings.source_dsn, "select pg_create_logical_replication_slot(%s, 'wal2json')", [witness])

    stop = threading.Event()
    source = threading.Thread(target=workload, args=(settings.source_dsn, 7, 240, stop))
    source.start()
    rng = random.Random(11)
    kills = 0
    try:
        while source.is_alive() or kills < 6:
            proc = start_ingester(cli_env)
            time.sleep(rng.uniform(0.4, 1.5))  # startup takes ~0.3 s: kills land in every phase
            proc.send_signal(signal.SIGKILL)
            output = proc.communicate()[0]
            assert proc.returncode == -signal.SIGKILL, output
            kills += 1
    finally:
        stop.set()
        source.join()

    pipeline.ingest(settings, wait=30)  # a clean restart drains the rest
    expected = witness_changes(settings, witness)
    found = bronze_stream_changes(settings)
    assert kills >= 6
    assert sum(expected.values()) > 500, "the workload must produce a real stream"
    assert {"I", "U", "D", "T"} <= {key[3] for key in expected}
    missing = expected - found
    doubled = {k: n for k, n in found.items() if n > 1}
    extra = found - expected
    assert not missing, f"{len(missing)} changes missing, e.g. {list(missing)[:3]}"
    assert not doubled and not extra

    # And the replayed bronze equals the source: the latest customer rows are the source's.
    latest = dict(query(settings.warehouse_dsn,
                        "select distinct on ((full_row->>'customer_id')::int) (full_row->>'customer_id')::int, "
                        "full_row->>'email' from bronze.br_customer_cdc order by (full_row->>'customer_id')::int, "
                        "commit_lsn desc, ordinal desc"))
    assert latest == dict(query(settings.source_dsn, "select customer_id, email from customer"))


def test_sigkill_during_initial_snapshot_then_restart_lands_each_row_once(
        settings: Settings, cli_env: dict[str, str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "medallion.cli", "ingest"], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Kill as soon as the snapshot is under way (the slot exists), before it can commit.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if query(settings.source_dsn, "select 1 from pg_replication_slots where slot_name = %s", [settings.slot]):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    report = pipeline.ingest(settings, wait=30)
    # killed before the snapshot's plan committed: a new snapshot; after: its chunks finished online
    assert report.snapshot_rows in (49636, 0)
    r_rows = sum(query(settings.warehouse_dsn, f"select count(*) from bronze.{bronze_table('public', t)} "
                                               "where op = 'R'")[0][0] for t in PAGILA_TABLES)
    assert r_rows == 49636
    counts = query(settings.warehouse_dsn, "select count(*), count(distinct full_row->>'rental_id') "
                                           "from bronze.br_rental_cdc")
    assert counts == [(16044, 16044)]


def replayed_keys(settings: Settings, table: str) -> tuple[list[str], set[tuple]]:
    """The key columns and the keys a replay of bronze leaves alive (what silver's current state holds)."""
    bronze = bronze_table("public", table)
    key = query(settings.warehouse_dsn, "select key_columns from bronze.table_schema where bronze_table = %s "
                                        "order by commit_lsn desc, ordinal desc limit 1", [bronze])[0][0]
    key_sql = ", ".join(f"full_row ->> '{k}'" for k in key)
    return key, set(query(settings.warehouse_dsn,
                     f"select {key_sql} from (select distinct on ({key_sql}) op, full_row from bronze.{bronze} "
                     f"where op <> 'T' order by {key_sql}, commit_lsn desc, ordinal desc) as latest where op <> 'D'"))


def test_sigkill_inside_the_parallel_snapshot_then_rerun_finishes_it_once(
        settings: Settings, cli_env: dict[str, str]) -> None:
    """Killed after some chunks of the parallel snapshot committed: `status` names the unfinished
    snapshot; the re-run keeps the copied chunks (never copied again), reads the rest online while
    streaming, and every change since arrives once (against a witness slot)."""
    from support import medallion

    env = dict(cli_env, MEDALLION_SNAPSHOT_CHUNK_BLOCKS="8", MEDALLION_SNAPSHOT_TEST_PAUSE="3:60")
    proc = subprocess.Popen([sys.executable, "-m", "medallion.cli", "ingest"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    copied = 0
    while copied < 3 and time.monotonic() < deadline and proc.poll() is None:
        try:
            copied = query(settings.warehouse_dsn,
                           "select count(*) from bronze.snapshot_chunk where state = 'copied'")[0][0]
        except psycopg.errors.UndefinedTable:
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    output = proc.communicate()[0]
    assert copied >= 3, output
    chunks = dict(query(settings.warehouse_dsn, "select bronze_table, count(*) filter (where state = 'planned') "
                                                "from bronze.snapshot_chunk group by 1"))
    assert any(chunks.values())  # stopped part way
    partial = query(settings.warehouse_dsn, "select bronze_table from bronze.snapshot_chunk group by 1 "
                                            "having bool_or(state = 'copied') and bool_or(state = 'planned')")
    assert partial, "no table was copied in part: the test does not exercise the skipped chunks"
    copied_rows = dict(query(settings.warehouse_dsn, "select bronze_table, sum(rows) from bronze.snapshot_chunk "
                                                     "where state = 'copied' group by 1"))
    status = medallion("status", env=cli_env)
    assert status.returncode == 1 and "initial snapshot of slot" in status.stdout + status.stderr, status.stdout

    execute(settings.source_dsn, "select pg_create_logical_replication_slot('witness_chunks', 'wal2json')")
    try:
        execute(settings.source_dsn, "update customer set email = 'chunk@example.com' where customer_id = 7")
        execute(settings.source_dsn, "delete from payment where payment_id = (select max(payment_id) from payment)")
        execute(settings.source_dsn, "insert into actor (first_name, last_name) values ('After', 'Kill')")
        pipeline.ingest(settings, wait=30)
        assert bronze_stream_changes(settings) == witness_changes(settings, "witness_chunks")
    finally:
        execute(settings.source_dsn, "select pg_drop_replication_slot('witness_chunks')")
    status = medallion("status", env=cli_env)
    assert "initial snapshot of slot" not in status.stdout + status.stderr, status.stdout
    lsn = query(settings.warehouse_dsn, "select (snapshot_lsn - '0/0')::bigint from bronze.ingest_state")[0][0]
    for table in PAGILA_TABLES:
        bronze = bronze_table("public", table)
        # the chunks copied before the kill are in bronze once; nothing else is at the snapshot's point
        at_snapshot = query(settings.warehouse_dsn, f"select count(*) from bronze.{bronze} where commit_lsn = %s",
                            [lsn])[0][0]
        assert at_snapshot == copied_rows.get(bronze, 0), table
        key, replayed = replayed_keys(settings, table)
        source = set(query(settings.source_dsn, f"select {', '.join(k + '::text' for k in key)} from {table}"))
        assert replayed == source, table
        # the online rest skipped the copied chunks' rows: no key has two R rows
        key_sql = ", ".join(f"full_row ->> '{k}'" for k in key)
        assert query(settings.warehouse_dsn, f"select count(*) from (select {key_sql} from bronze.{bronze} "
                                             f"where op = 'R' group by {key_sql} having count(*) > 1) as twice") \
            == [(0,)], table
    assert query(settings.warehouse_dsn, "select count(*) from bronze.online_snapshot where finished_ts is null") \
        == [(0,)]
    assert query(settings.warehouse_dsn, "select full_row ->> 'email' from bronze.br_customer_cdc "
                                         "where full_row ->> 'customer_id' = '7' order by commit_lsn desc, "
                                         "ordinal desc limit 1") == [("chunk@example.com",)]
