"""`ingest --follow` rides out restarts of the source and the warehouse, and stays exactly-once.

The test cluster holds both the source and the warehouse databases, so a restart of it is an
outage of both. A workload keeps changing the source (reconnecting itself after each restart);
the follower is restarted under, twice: `pg_ctl restart -m fast` (AdminShutdown) and `-m
immediate` (the connection just drops, crash recovery follows). Afterwards bronze must equal an
independent decode of the source change for change, the follower must have said each outage in
one line, and no traceback.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

import psycopg

from medallion import pipeline
from medallion.settings import Settings
from medallion.source.cluster import EmbeddedCluster
from support import execute, query
from test_bronze_exactly_once import bronze_stream_changes, witness_changes
from test_follow import wait_for


def resilient_workload(dsn: str, stop: threading.Event, done: list[int]) -> None:
    """Small transactions until stopped; a statement cut by a restart is simply not counted."""
    rng = random.Random(3)
    step = 0
    while not stop.is_set():
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
                while not stop.is_set():
                    step += 1
                    if step % 3 == 0:
                        conn.execute("insert into actor (first_name, last_name) values ('R', %s)", [f"s{step}"])
                    elif step % 3 == 1:
                        conn.execute("update customer set email = %s where customer_id = %s",
                                     [f"r{step}@example.com", rng.randint(1, 599)])
                    else:
                        conn.execute("delete from actor where actor_id = (select max(actor_id) from actor "
                                     "where first_name = 'R')")
                    done.append(step)
                    time.sleep(0.01)
        except psycopg.OperationalError:
            time.sleep(0.2)  # the server is restarting


def streaming(settings: Settings) -> bool:
    """The follower holds its slot: a restart now cuts its connection (one it must say and ride out)."""
    try:
        return query(settings.source_dsn or "", "select active from pg_replication_slots where slot_name = %s",
                     [settings.slot]) == [(True,)]
    except psycopg.OperationalError:  # the server is restarting
        return False


def test_follow_survives_fast_and_immediate_restarts_exactly_once(settings: Settings, cli_env: dict[str, str],
                                                                 cluster: EmbeddedCluster) -> None:
    pipeline.ingest(settings)  # the initial snapshot
    witness = f"{settings.slot}_witness"
    execute(settings.source_dsn or "", "select pg_create_logical_replication_slot(%s, 'wal2json')", [witness])
    follower = subprocess.Popen([sys.executable, "-m", "medallion.cli", "ingest", "--follow", "--give-up-after", "120"],
                                env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, done = threading.Event(), []
    source = threading.Thread(target=resilient_workload, args=(settings.source_dsn, stop, done))
    source.start()
    try:
        for mode in ("fast", "immediate"):
            # not a fixed 2 s: a follower still starting on a busy machine met no outage to say
            wait_for(lambda: streaming(settings), f"the follower streaming before the {mode} restart")
            cluster.restart(mode)
            time.sleep(3)
        time.sleep(2)
    finally:
        stop.set()
        source.join()
    assert len(done) > 50, "the workload made too few changes to say anything"
    time.sleep(4)  # the follower catches up with the last changes
    follower.send_signal(signal.SIGINT)
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert "Traceback" not in err
    assert err.count("reconnecting") >= 2 and "reconnected" in err, err

    expected = witness_changes(settings, witness)
    found = bronze_stream_changes(settings)
    assert found == expected
