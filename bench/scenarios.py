"""One function per figure of the benchmark; each returns a dict of numbers (and prints nothing)."""

from __future__ import annotations

import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from bench import dbt_runs, shop
from medallion import pipeline
from medallion.bronze import store
from medallion.bronze.decoders import decoder_for
from medallion.bronze.publication import publication_name
from medallion.db import connect, endpoints, sql_text
from medallion.selection import resolve
from medallion.settings import Settings
from medallion.transform import BuildReport
from medallion.source.catalog import read_tables
from pagila_example import api as example

# What each plugin decodes for the slot, counted on the server: the decoding limit of ingest.
# The options are the ingester's own (decoders.py), so the yardstick decodes what ingest is sent.
PEEK = {
    "pgoutput": "select count(*) from pg_logical_slot_peek_binary_changes(%(slot)s, null, null, "
                "variadic %(options)s::text[])",
    "wal2json": "select count(*) from pg_logical_slot_peek_changes(%(slot)s, null, null, variadic %(options)s::text[])",
}


def _pending(settings: Settings, plugin: str) -> int:
    with connect(endpoints(settings).source, "source", autocommit=True) as conn:
        options = decoder_for(plugin).options(publication_name(settings.slot), conn.info.server_version)
        return conn.execute(PEEK[plugin], {"slot": settings.slot,
                                           "options": [part for pair in options.items() for part in pair]}
                            ).fetchone()[0]


def initial_load(pipelines: dict[str, Settings]) -> dict:
    """Pagila into bronze (the snapshot), then the first full silver+gold build; a second
    pipeline on the same source, with wal2json, takes its snapshot too (for decode_vs_ingest)."""
    main = pipelines["pgoutput"]
    example.load_pagila(main)
    report = pipeline.ingest(main)
    for name, other in pipelines.items():
        if other is not main:
            pipeline.prepare_source(other)
            pipeline.ingest(other)
    began = time.perf_counter()
    pipeline.build(main)
    return {"snapshot_rows": report.snapshot_rows, "snapshot_seconds": report.snapshot_seconds,
            "snapshot_rows_per_s": report.snapshot_rows / report.snapshot_seconds,
            "first_build_seconds": time.perf_counter() - began}


def decode_and_ingest(settings: Settings, plugin: str) -> dict:
    """The changes pending on the pipeline's slot, side by side: (a) PostgreSQL's decoding
    alone, count(*) over the slot's peek, best of three; (b) `medallion ingest` of the same
    changes, wall clock of the stream (decoding, parsing, writing)."""
    decode_runs = []
    for _ in range(3):  # peek does not consume: the same changes each time; the best run is the limit
        began = time.perf_counter()
        messages = _pending(settings, plugin)
        decode_runs.append(time.perf_counter() - began)
    decode_seconds = min(decode_runs)
    report = pipeline.ingest(settings)
    changes = report.changes
    # peek rows include BEGIN/COMMIT (and Relation) messages: compare row changes with row changes
    decode_rate = changes / decode_seconds
    ingest_rate = changes / report.stream_seconds
    return {"peek_messages": messages, "changes": changes,
            "transactions": sum(b.transactions for b in report.batches), "decode_seconds": decode_seconds,
            "decode_runs_seconds": decode_runs, "ingest_seconds": report.stream_seconds,
            "decode_changes_per_s": decode_rate, "ingest_changes_per_s": ingest_rate,
            "ingest_over_decode": ingest_rate / decode_rate}


def decode_vs_ingest(pipelines: dict[str, Settings], factor: int) -> dict:
    """Per plugin, side by side on the same changes (Pagila grown to factor, in one source
    transaction): decoding alone against `medallion ingest` (decode_and_ingest)."""
    example.scale(pipelines["pgoutput"], factor)
    results: dict = {"factor": factor}
    for plugin, settings in pipelines.items():
        results[plugin] = decode_and_ingest(settings, plugin)
    results["default"] = "pgoutput"
    return results


ONE_PERCENT = [
    "update public.rental set return_date = coalesce(return_date, rental_date) + interval '1 hour' "
    "where rental_id % 100 = 0",
    "update public.payment set amount = amount + 0.01 where payment_id % 100 = 0",
    "update public.customer set email = 'changed.' || customer_id || '@example.org' where customer_id % 100 = 0",
    "update public.film set rental_rate = rental_rate + 1 where film_id % 100 = 0",
]


def incremental_vs_full(settings: Settings) -> dict:
    """Silver+gold after changing 1% of the rows: incremental build (as `medallion build` runs
    it: the statements dbt stored, when the project is unchanged; the median of three, each after
    its own 1%) vs --full-refresh; beside them the same incremental build with dbt started
    (`medallion build --dbt`), after another 1%."""
    pipeline.build(settings)  # absorb what the scale added (and store what the next build runs)
    ends = endpoints(settings)

    def one_percent() -> tuple[int, int]:
        with connect(ends.source, "source", autocommit=True) as conn:
            changed = sum(conn.execute(statement).rowcount for statement in ONE_PERCENT)
            total = conn.execute("select (select count(*) from rental) + (select count(*) from payment) "
                                 "+ (select count(*) from customer) + (select count(*) from film)").fetchone()[0]
        pipeline.ingest(settings)
        return changed, total

    # the median of three incremental builds, each after a 1% change of its own: one build is a
    # second or two on two shared cores, where an autovacuum alongside moves it by a third
    samples: list[tuple[float, BuildReport]] = []
    for _ in range(3):
        changed, total = one_percent()
        began = time.perf_counter()
        built = pipeline.build(settings)
        samples.append((time.perf_counter() - began, built))
    incremental, stored = sorted(samples, key=lambda sample: sample[0])[1]
    one_percent()
    began = time.perf_counter()
    pipeline.build(settings, stored=False)
    with_dbt = time.perf_counter() - began
    began = time.perf_counter()
    pipeline.build(settings, full_refresh=True)
    full = time.perf_counter() - began
    slowest = sorted(stored.nodes, key=lambda n: n.seconds, reverse=True)[:5]
    return {"rows_changed": changed, "rows_total": total, "incremental_seconds": incremental,
            "incremental_samples_seconds": [round(seconds, 3) for seconds, _ in samples],
            "incremental_ran": f"dbt ({stored.dbt_reason})" if stored.dbt_reason else "the stored statements",
            "incremental_slowest_nodes": {n.unique_id: round(n.seconds, 2) for n in slowest},
            "incremental_with_dbt_seconds": with_dbt, "full_refresh_seconds": full,
            "incremental_over_full": incremental / full, "incremental_with_dbt_over_full": with_dbt / full}


def versions_vs_snapshot(settings: Settings, customers: int = 100, rounds: int = 5, changes_per_round: int = 3) -> dict:
    """Our dim_customer_hist vs a dbt snapshot (check strategy) over the same change bursts."""
    ids = list(range(1, customers + 1))
    count_ours = "select count(*) from silver.dim_customer_hist where customer_id = any(%s)"
    count_snap = "select count(*) from bench_snapshots.customer_snapshot where customer_id = any(%s)"
    ends = endpoints(settings)
    dbt_runs.snapshot(settings)  # the snapshot's baseline
    with connect(ends.warehouse, "warehouse") as wh:
        ours_before = wh.execute(count_ours, [ids]).fetchone()[0]
        snap_before = wh.execute(count_snap, [ids]).fetchone()[0]
    ours_seconds = snap_seconds = 0.0
    with connect(ends.source, "source", autocommit=True) as src:
        for round_no in range(rounds):
            for change in range(changes_per_round):
                src.execute("update public.customer set email = %s || customer_id || '@example.org' "
                            "where customer_id = any(%s)", [f"r{round_no}c{change}.", ids])
            pipeline.ingest(settings)
            ours_seconds += dbt_runs.build_selected(settings, "dim_customer_hist dim_customer")
            snap_seconds += dbt_runs.snapshot(settings)
    with connect(ends.warehouse, "warehouse") as wh:
        ours = wh.execute(count_ours, [ids]).fetchone()[0] - ours_before
        snap = wh.execute(count_snap, [ids]).fetchone()[0] - snap_before
    return {"customers": customers, "committed_changes_per_customer": rounds * changes_per_round,
            "silver_new_versions": ours, "snapshot_new_versions": snap,
            "silver_seconds": ours_seconds, "snapshot_seconds": snap_seconds}


# The same few hundred rows at any scale: the first N keys of each table, N fixed.
FIXED_CHANGES = [
    "update public.rental set return_date = coalesce(return_date, rental_date) + interval '1 hour' "
    "where rental_id in (select rental_id from public.rental order by rental_id limit 100)",
    "update public.payment set amount = amount + 0.01 "
    "where payment_id in (select payment_id from public.payment order by payment_id limit 100)",
    "update public.customer set email = 'fixed.' || customer_id || '@example.org' where customer_id <= 20",
    "update public.film set rental_rate = rental_rate + 1 where film_id <= 5",
]


GOLD_BOOKKEEPING = r"""
select c.relname, pg_total_relation_size(c.oid)
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where n.nspname = 'medallion' and c.relkind in ('r', 'p') and c.relname ~ '^gold__.*__(seen|state(_[0-9]+(_v[0-9]+)?)?|basis)$'
"""


def gold_bookkeeping(settings: Settings) -> dict:
    """Gold's own tables besides the marts (<mart>__seen, the delta path's <mart>__state, the
    older marts' <mart>__basis), bytes with indexes, against the silver relations the marts
    read (the models their __seen rows name: a current view's history, a current-state table)."""
    with connect(endpoints(settings).warehouse, "warehouse") as conn:
        tables = conn.execute(GOLD_BOOKKEEPING).fetchall()
        read: set[str] = set()
        for name, _ in tables:
            if name.endswith("__seen"):
                read |= {row[0] for row in conn.execute(
                    sql.SQL("select model from medallion.{}").format(sql.Identifier(name))).fetchall()}
        # a partitioned relation (a month-partitioned fact) is the sum of its partitions
        silver = conn.execute("select coalesce(sum(pg_total_relation_size(p.relid)), 0)::bigint "
                              "from unnest(%s::text[]) as m, pg_partition_tree(to_regclass(m)) as p",
                              [sorted(read)]).fetchone()[0]
        marts = {row[0] for row in conn.execute(
            "select tablename from pg_tables where schemaname = 'gold' and tablename !~ '__(seen|state|basis)$'")}
    bookkeeping = sum(size for _, size in tables)
    return {"gold_bookkeeping_bytes": bookkeeping, "silver_read_bytes": int(silver),
            "gold_bookkeeping_over_silver_read": bookkeeping / silver if silver else None,
            "gold_bookkeeping_tables": {name: size for name, size in sorted(tables)},
            "silver_read": sorted(read), "marts": sorted(marts)}


def fixed_change_build(settings: Settings) -> dict:
    """`medallion build` (models and their tests) after the same fixed set of changed rows:
    called at factor 1 and again at factor 10, its cost should barely grow with the data.
    Beside it: the gold marts' share of it, and gold's bookkeeping against the silver it reads."""
    pipeline.build(settings)  # absorb whatever came before
    with connect(endpoints(settings).source, "source", autocommit=True) as conn:
        changed = sum(conn.execute(statement).rowcount for statement in FIXED_CHANGES)
        rentals = conn.execute("select count(*) from rental").fetchone()[0]
    pipeline.ingest(settings)
    began = time.perf_counter()
    report = pipeline.build(settings)
    seconds = time.perf_counter() - began
    slowest = sorted(report.nodes, key=lambda n: n.seconds, reverse=True)[:5]
    sizes = gold_bookkeeping(settings)
    gold = {n.unique_id: round(n.seconds, 3) for n in report.nodes
            if n.unique_id.startswith("model.") and n.unique_id.rsplit(".", 1)[-1] in sizes["marts"]}
    return {"rows_changed": changed, "rentals": rentals, "build_seconds": seconds,
            "ran": f"dbt ({report.dbt_reason})" if report.dbt_reason else "the stored statements",
            "slowest_nodes": {n.unique_id: round(n.seconds, 2) for n in slowest},
            "gold_seconds": sum(gold.values()), "gold_nodes": gold} | sizes


def freshness(settings: Settings, env: dict[str, str], probes: int = 20, rate: float = 20.0) -> dict:
    """Source commit -> visible in silver's current view (dim_customer) and in gold
    (vw_monthly_revenue), with `medallion run --follow` running and `medallion simulate` at
    `rate` transactions/s beside the probes."""
    follower = subprocess.Popen([sys.executable, "-m", "medallion.cli", "run", "--follow"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    traffic = threading.Event()
    simulated: list[int] = []

    def simulate() -> None:
        while not traffic.is_set():
            simulated.append(example.simulate(settings, seed=len(simulated), transactions=None, seconds=5,
                                               rate=rate).transactions)

    ends = endpoints(settings)
    silver, gold = [], []
    simulator = threading.Thread(target=simulate, daemon=True)
    try:
        with connect(ends.source, "source", autocommit=True) as src, \
                connect(ends.warehouse, "warehouse", autocommit=True) as wh:
            _wait_until(lambda: wh.execute("select to_regclass('medallion.follow_step') is not null and exists "
                                           "(select from medallion.follow_step where layer = 2 and step_sql is not null)"
                                           ).fetchone()[0], 600, "the follower's first builds")
            simulator.start()
            time.sleep(3)
            # probe 0 is a warm-up, not counted: the layer-2 step exists from the first dbt build
            # on (marts store theirs on their first build), while the follower may still be
            # finishing that build's tests and catching up with the simulator's backlog
            for probe in range(probes + 1):
                token = f"fresh{probe}.{time.time_ns()}@example.org"
                revenue0 = wh.execute("select sum(revenue) from gold.vw_monthly_revenue").fetchone()[0]
                with src.transaction():
                    src.execute("update public.customer set email = %s where customer_id = 1", [token])
                    src.execute("update public.payment set amount = amount + 1 where payment_id = "
                                "(select min(payment_id) from public.payment)")
                committed = time.perf_counter()
                seen_silver = seen_gold = None
                while seen_silver is None or seen_gold is None:
                    now = time.perf_counter()
                    if now - committed > 300:
                        raise TimeoutError("a change did not become visible within 300 s")
                    if seen_silver is None and wh.execute(
                            "select 1 from silver.dim_customer where email = %s", [token]).fetchone():
                        seen_silver = now - committed
                    if seen_gold is None:
                        revenue = wh.execute("select sum(revenue) from gold.vw_monthly_revenue").fetchone()[0]
                        if revenue != revenue0:
                            seen_gold = now - committed
                    time.sleep(0.02)
                if probe:
                    silver.append(seen_silver)
                    gold.append(seen_gold)
                time.sleep(random.uniform(0.5, 1.5))
    finally:
        traffic.set()
        follower.terminate()
        _, stderr = follower.communicate(timeout=120)
        if simulator.is_alive():
            simulator.join(30)

    def pct(values: list[float], q: float) -> float | None:
        return statistics.quantiles(values, n=20)[int(q * 20) - 1] if len(values) >= 2 else None

    return {"probes": probes, "simulate_rate": rate, "simulated_transactions": sum(simulated),
            "follower_exit": follower.returncode, "follower_last_lines": stderr.strip().splitlines()[-3:],
            "silver_p50_s": statistics.median(silver), "silver_p95_s": pct(silver, 0.95),
            "gold_p50_s": statistics.median(gold), "gold_p95_s": pct(gold, 0.95)}


def _wait_until(check: callable, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done within {timeout:.0f} s")
        time.sleep(0.5)


def as_of_lookup(settings: Settings, cluster_dsn_for: callable, keys: int = 1000, versions_per_key: int = 1000,
                 lookups: int = 2000) -> dict:
    """p50 of one as-of point lookup (one customer at one time) on >= 1M versions.

    The history is built by the real silver model from synthetic bronze rows (keys x versions
    committed one second apart) in a warehouse of its own."""
    config = settings.home / "asof-medallion.toml"  # customer alone, no gold: the history under test
    config.write_text('[capture]\ninclude = ["public.customer"]\n[tables."public.customer"]\nsilver = "dim_customer"\n')
    asof = replace(settings, warehouse_dsn=cluster_dsn_for("bench_asof"), source_dsn=settings.source_dsn
                   or endpoints(settings).source, config_path=config)
    with connect(asof.source_dsn, "source") as src:
        customer = next(t for t in resolve(settings.config(), read_tables(src)).captured
                        if t.table.qualified == "public.customer")
    with connect(asof.warehouse_dsn, "warehouse") as wh:
        store.ensure_schema(wh)  # bronze as an ingest leaves it: the table and its recorded schema
        store.create_bronze_table(wh, customer.bronze)
        store.record_table(wh, customer.bronze, customer.table, 0, "2026-01-01 00:00:00+00")
        wh.execute(sql_text("bench", "synthetic_customer_history.sql"),
                   {"keys": keys, "versions": versions_per_key})
        wh.commit()
    began = time.perf_counter()
    # models only: the tests' relationships point at tables this warehouse does not have
    dbt_runs.build_selected(asof, "dim_customer_hist", full_refresh=True, command="run")
    build_seconds = time.perf_counter() - began
    rng = random.Random(5)
    timings = []
    with psycopg.connect(asof.warehouse_dsn, autocommit=True) as wh:
        versions = wh.execute("select count(*) from silver.dim_customer_hist").fetchone()[0]
        low, high = wh.execute("select min(sys_start), max(sys_start) from silver.dim_customer_hist").fetchone()
        span = (high - low).total_seconds()
        statement = "select * from silver.dim_customer_as_of(%s) where customer_id = %s"
        for i in range(lookups):
            at = low + (high - low) * rng.random()
            key = rng.randint(1, keys)
            began = time.perf_counter()
            rows = wh.execute(statement, [at, key], prepare=True).fetchall()
            timings.append(time.perf_counter() - began)
            assert len(rows) == 1
        plan = "\n".join(r[0] for r in wh.execute(
            "explain " + statement.replace("%s", "{}").format(f"'{low.isoformat()}'::timestamptz", 1)).fetchall())
    return {"versions": versions, "history_build_seconds": build_seconds, "lookups": lookups,
            "p50_ms": statistics.median(timings) * 1000, "p95_ms": statistics.quantiles(timings, n=20)[18] * 1000,
            "history_span_s": span, "plan_uses_index": "Index" in plan}


def engines(settings: Settings) -> dict:
    """Factor-10 builds of silver and gold on PostgreSQL and on Spark (local, 2 cores) side by side:
    a full build each (Spark's includes starting its JVM, ~15 s), then an incremental one after 1%
    of the rows changed. Bronze reaches the lake by `medallion export` (timed too)."""
    from medallion.settings import PAGILA_CONFIG, REPO_ROOT

    folder = settings.home / "bench_lake"
    shutil.rmtree(folder, ignore_errors=True)  # the bench's warehouse is new: so is its lake
    folder.mkdir(parents=True, exist_ok=True)
    text = PAGILA_CONFIG.read_text(encoding="utf-8").replace(
        'dbt_project = "transform"', f'dbt_project = "{REPO_ROOT / "transform"}"')
    (folder / "medallion.toml").write_text(text + f'\n[lake]\nwarehouse = "{folder / "files"}"\n', encoding="utf-8")
    lake = replace(settings, config_path=folder / "medallion.toml")
    result: dict = {}

    def timed(name: str, step: callable) -> None:
        began = time.perf_counter()
        step()
        result[name] = round(time.perf_counter() - began, 1)

    pipeline.ingest(lake)
    timed("export_seconds", lambda: pipeline.export(lake))
    timed("postgres_full_seconds", lambda: pipeline.build(lake, full_refresh=True, tests=False))
    timed("spark_first_seconds", lambda: pipeline.build(lake, full_refresh=True, tests=False, engine="spark"))
    with connect(endpoints(lake).source, "source", autocommit=True) as conn:
        result["rows_changed"] = sum(conn.execute(statement).rowcount for statement in ONE_PERCENT)
    pipeline.ingest(lake)
    timed("export_incremental_seconds", lambda: pipeline.export(lake))
    timed("postgres_incremental_seconds", lambda: pipeline.build(lake, tests=False, stored=False))  # dbt, as Spark
    timed("spark_incremental_seconds", lambda: pipeline.build(lake, tests=False, engine="spark"))
    timed("compare_seconds", lambda: result.update(_engines_agree(lake)))
    return result


def _engines_agree(lake: Settings) -> dict:
    """Every silver relation and gold mart of full Pagila at this factor, fingerprinted on both
    engines (medallion/spark/fingerprint.py): how many, and which differ."""
    from medallion.lake.target import lake_target
    from medallion.spark.fingerprint import differences
    from medallion.spark.session import spark_session

    with connect(endpoints(lake).warehouse, "warehouse") as conn:
        conn.execute("set timezone = 'UTC'")
        compared, differing = differences(conn, spark_session(lake_target(lake)))
    return {"relations_compared": compared, "relations_differing": differing}


def nightly_any_database(base_env: dict[str, str], database_dsn: callable, folder: Path,
                         customers: int = 2000) -> dict:
    """The nightly `medallion run` of a user's project that is not Pagila (bench/shop.py: the
    tests' shop schema, grown; silver and the shop's two plain marts), from the user's folder: the first
    run, then the run after 1% of the rows changed, which must not start dbt (its last line
    says which ran and, when dbt started, why). Databases, slot and folder of its own."""
    source, warehouse = database_dsn("bench_shop_source"), database_dsn("bench_shop_warehouse")
    slot = "medallion_bench_shop"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shop.write_project(folder, gold=True)  # a mart's first build stores its step too
    env = {name: value for name, value in base_env.items() if name != "MEDALLION_CONFIG"} | {
        "MEDALLION_SOURCE_DSN": source, "MEDALLION_WAREHOUSE_DSN": warehouse, "MEDALLION_SLOT": slot,
        "MEDALLION_HOME": str(folder / ".medallion"), "COLUMNS": "1000"}  # COLUMNS: the last line unwrapped
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(shop.SHOP_SCHEMA)
        for statement in shop.SHOP_STEPS[0] + shop.grow_sql(customers):
            conn.execute(statement)
        total = conn.execute("select (select count(*) from shop.customers) + (select count(*) from shop.orders)"
                             ).fetchone()[0]

    def medallion(*args: str) -> tuple[str, float]:
        began = time.perf_counter()
        ran = subprocess.run([sys.executable, "-m", "medallion.cli", *args], env=env, cwd=folder,
                             capture_output=True, text=True)
        if ran.returncode != 0:
            raise RuntimeError(f"medallion {' '.join(args)}: {(ran.stderr.strip().splitlines() or ['?'])[-1]}")
        return ran.stdout.strip().splitlines()[-1], time.perf_counter() - began

    try:
        medallion("prepare-source")
        first_line, first = medallion("run")
        with psycopg.connect(source, autocommit=True) as conn:
            changed = sum(conn.execute(statement).rowcount for statement in shop.change_sql(1))
        line, seconds = medallion("run")
    finally:  # no slot left behind to hold the cluster's WAL for the other figures
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots "
                         "where slot_name = %s", [slot])
    return {"rows_changed": changed, "rows_total": total, "first_run_seconds": first, "first_run_line": first_line,
            "nightly_run_seconds": seconds, "nightly_run_line": line, "started_dbt": "dbt started" in line}


def wal_per_update(settings: Settings, updates: int = 2000, rows: int = 100, value_chars: int = 2400) -> dict:
    """The source's WAL bytes per update under replica identity DEFAULT (what prepare-source now
    leaves on a keyed table; bronze completes unchanged TOASTed values from the previous version,
    medallion/bronze/unchanged.py) and FULL (every update also logs the whole old row, its
    TOASTed value included). A table with a primary key and a ~2.4 kB text value stored out of
    line (random hex: pglz cannot shrink it, so it is TOASTed); `updates` single-row updates of
    another column, one transaction each, spread over `rows` rows; the bytes are
    pg_current_wal_lsn() differences. Each row is updated once before measuring, so the
    first-touch full-page images fall outside the measurement (barring a checkpoint)."""
    result: dict = {"updates": updates, "rows": rows, "value_chars": value_chars}
    with connect(endpoints(settings).source, "source", autocommit=True) as conn:
        conn.execute("drop schema if exists bench_wal cascade")
        conn.execute("create schema bench_wal")
        try:
            for identity in ("default", "full"):
                table = sql.Identifier("bench_wal", f"wal_{identity}")
                update = sql.SQL("update {} set n = n + 1 where id = %s").format(table)
                conn.execute(sql.SQL("create table {} (id int primary key, n int not null, body text not null)")
                             .format(table))
                conn.execute(sql.SQL("alter table {} replica identity {}").format(table, sql.SQL(identity.upper())))
                conn.execute(sql.SQL("insert into {} select i, 0, (select string_agg(md5(random()::text || j), '') "
                                     "from generate_series(1, %s) as j where i > 0) from generate_series(1, %s) as i")
                             .format(table), [value_chars // 32 + 1, rows])
                toasted = conn.execute("select pg_relation_size(reltoastrelid) > 0 from pg_class "
                                       "where oid = %s::regclass", [table.as_string(conn)]).fetchone()[0]
                for i in range(1, rows + 1):  # warm-up: each page's first touch (its full-page image)
                    conn.execute(update, [i])
                start = conn.execute("select pg_current_wal_lsn()").fetchone()[0]
                for k in range(updates):
                    conn.execute(update, [k % rows + 1])
                wal = conn.execute("select pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [start]).fetchone()[0]
                result[f"{identity}_wal_bytes_per_update"] = round(float(wal) / updates, 1)
                result[f"{identity}_value_toasted"] = bool(toasted)
        finally:
            conn.execute("drop schema if exists bench_wal cascade")
    result["full_over_default"] = round(result["full_wal_bytes_per_update"] / result["default_wal_bytes_per_update"], 2)
    return result
