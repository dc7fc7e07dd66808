"""`make bench`: every figure of the benchmark in one run, on one embedded cluster of its own.

Prints a table and writes bench/results/latest.json. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import capture, scenarios
from medallion.settings import PAGILA_CONFIG, REPO_ROOT, SOURCE_DB, Settings
from medallion.source.cluster import EmbeddedCluster

console = Console()


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--factor", type=int, default=10,
                        help="Pagila scale factor, 2 or more: the changes measured are factor-1 copies (default 10)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--home", type=Path, default=REPO_ROOT / ".medallion-bench")
    parser.add_argument("--only", metavar="STEP[,STEP]",
                        help="re-measure these steps alone, on the state an earlier full run left in --home, "
                             "and update their figures in --out (e.g. --only freshness; --only capture needs no "
                             "earlier run: it loads a Pagila of its own)")
    args = parser.parse_args()
    if args.factor < 2:
        parser.error("--factor must be 2 or more: the changes measured are Pagila's rows copied factor-1 times")

    pagila_dir = os.environ.get("PAGILA_DIR")
    settings = Settings(home=args.home.resolve(), source_dsn=None, warehouse_dsn=None, slot="medallion_bench",
                        pagila_dir=Path(pagila_dir) if pagila_dir else None, config_path=PAGILA_CONFIG)
    cluster = EmbeddedCluster(settings.home)
    cluster.up()
    env = dict(os.environ, MEDALLION_HOME=str(settings.home), MEDALLION_SLOT=settings.slot,
               MEDALLION_CONFIG=str(PAGILA_CONFIG))
    for name in ("MEDALLION_SOURCE_DSN", "MEDALLION_WAREHOUSE_DSN", "MEDALLION_PLUGIN"):
        env.pop(name, None)
    # the same source captured a second time, with wal2json, into a warehouse of its own
    wal2json = replace(settings, source_dsn=cluster.dsn(SOURCE_DB), warehouse_dsn=_database_dsn(cluster)(
        "warehouse_wal2json"), slot="medallion_bench_wal2json", plugin="wal2json")
    pipelines = {"pgoutput": settings, "wal2json": wal2json}

    results: dict = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    steps = [
        ("initial_load", lambda: scenarios.initial_load(pipelines)),
        ("fixed_change_factor_1", lambda: scenarios.fixed_change_build(settings)),
        ("decode_vs_ingest", lambda: scenarios.decode_vs_ingest(pipelines, args.factor)),
        ("fixed_change_factor_n", lambda: scenarios.fixed_change_build(settings)),
        ("incremental_vs_full", lambda: scenarios.incremental_vs_full(settings)),
        ("versions_vs_snapshot", lambda: scenarios.versions_vs_snapshot(settings)),
        ("freshness", lambda: scenarios.freshness(settings, env)),
        ("as_of_lookup", lambda: scenarios.as_of_lookup(settings, _database_dsn(cluster))),
        ("engines", lambda: scenarios.engines(settings)),
        ("nightly_any_database", lambda: scenarios.nightly_any_database(env, _database_dsn(cluster),
                                                                        settings.home / "shop_project")),
        ("wal_per_update", lambda: scenarios.wal_per_update(settings)),
        # last: a Pagila of its own, so it runs alone too (--only capture); its autovacuum
        # and checkpoints then come after the other figures
        ("capture", lambda: capture.capture(settings, cluster.dsn, _database_dsn(cluster), args.factor)),
    ]
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {name for name, _ in steps})
        if unknown:
            parser.error(f"no bench step named {', '.join(unknown)}; the steps: {', '.join(n for n, _ in steps)}")
        steps = [(name, step) for name, step in steps if name in wanted]
        if args.out.exists():  # the other figures stay as the last full run measured them
            results = json.loads(args.out.read_text()) | {"machine": results["machine"]}
    began = time.perf_counter()
    for name, step in steps:
        with console.status(f"bench: {name}"):
            t0 = time.perf_counter()
            results[name] = step()
            results[name]["step_seconds"] = round(time.perf_counter() - t0, 1)
        console.print(f"[dim]{name}: done in {results[name]['step_seconds']}s[/]")
        args.out.parent.mkdir(parents=True, exist_ok=True)  # what is measured is kept, even if a later step fails
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if not args.only:
        results["total_seconds"] = round(time.perf_counter() - began, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    try:
        console.print(summary(results))
    except KeyError as missing:  # --only before any full run: the figures are in --out, the table needs them all
        if "capture" in results:
            table = _table()
            capture_rows(table, results["capture"])
            console.print(table)
        console.print(f"[dim]no full summary table: {missing} was never measured into {args.out} (run 'make bench')[/]")
    console.print(f"numbers written to {args.out}")


def _database_dsn(cluster: EmbeddedCluster):
    def make(name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return cluster.dsn(name)
    return make


def _table() -> Table:
    table = Table(title="pagila-medallion benchmark", show_lines=False)
    table.add_column("figure")
    table.add_column("measured", justify="right")
    table.add_column("target / yardstick", justify="right")
    return table


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f}"


def capture_rows(table: Table, c: dict) -> None:
    """The capture step's rows (bench/capture.py): each figure beside PostgreSQL's own limit."""
    s, f, z = c["snapshot"], c["floor"], c["sizes"]
    table.add_row(f"initial snapshot of Pagila at factor {c['factor']} into bronze ({s['rows']:,} rows, "
                  f"{f['tables']} tables)", f"{s['rows_per_s']:,.0f} rows/s", "")
    table.add_row("  floor: COPY of the same rows as JSON text into a jsonb column (best of 2)",
                  f"{f['rows_per_s']:,.0f} rows/s", "yardstick")
    table.add_row("  (the same rows read out of the source as JSON text)", f"{f['source_out_rows_per_s']:,.0f} rows/s",
                  "")
    table.add_row("  snapshot / floor", f"{c['snapshot_over_floor']:.2f}", ">= 0.5")
    for key, shape in (("huge_transaction", "one source transaction"),
                       ("small_transactions", "{transactions:,} transactions of {changes_per_transaction}")):
        p = c[key]
        table.add_row(f"pgoutput: {p['changes']:,} changes in " + shape.format(**p)
                      + ": decoding limit / medallion ingest",
                      f"{p['decode_changes_per_s']:,.0f} / {p['ingest_changes_per_s']:,.0f} changes/s", "")
        table.add_row("  ingest / decoding", f"{p['ingest_over_decode']:.2f}", ">= 0.25")
    table.add_row(f"bronze after that snapshot / the source's {z['tables']} captured tables: "
                  "total (with indexes, TOAST)",
                  f"{_mb(z['bronze_total_bytes'])} / {_mb(z['source_total_bytes'])} MB = "
                  f"{z['bronze_over_source_total']:.2f}", "")
    table.add_row("  heap alone", f"{_mb(z['bronze_heap_bytes'])} / {_mb(z['source_heap_bytes'])} MB = "
                  f"{z['bronze_over_source_heap']:.2f}", "")


def summary(r: dict) -> Table:
    table = _table()
    d, i, v, f, a = (r["decode_vs_ingest"], r["incremental_vs_full"], r["versions_vs_snapshot"],
                     r["freshness"], r["as_of_lookup"])
    table.add_row(f"initial snapshot of Pagila into bronze, factor 1 ({r['initial_load']['snapshot_rows']:,} rows)",
                  f"{r['initial_load']['snapshot_rows_per_s']:,.0f} rows/s", "")
    for plugin in ("pgoutput", "wal2json"):
        p = d[plugin]
        default = " (default)" if plugin == d["default"] else ""
        table.add_row(f"{plugin}{default}: decoding limit (count over peek), factor {d['factor']}",
                      f"{p['decode_changes_per_s']:,.0f} changes/s", "yardstick")
        table.add_row(f"{plugin}: medallion ingest of the same {p['changes']:,} changes",
                      f"{p['ingest_changes_per_s']:,.0f} changes/s", "")
        table.add_row(f"{plugin}: ingest / decoding", f"{p['ingest_over_decode']:.2f}",
                      ">= 0.33" if default else "")
    table.add_row(f"incremental build after {i['rows_changed']:,} changed rows "
                  f"({100 * i['rows_changed'] / i['rows_total']:.1f}%), by {i.get('incremental_ran', 'dbt')}",
                  f"{i['incremental_seconds']:.1f} s", "")
    if "incremental_with_dbt_seconds" in i:
        table.add_row("the same with dbt started (medallion build --dbt), after another 1%",
                      f"{i['incremental_with_dbt_seconds']:.1f} s ({i['incremental_with_dbt_over_full']:.2f} of full)", "")
    table.add_row("--full-refresh build", f"{i['full_refresh_seconds']:.1f} s", "")
    table.add_row("incremental / full refresh", f"{i['incremental_over_full']:.3f}", "<= 0.05")
    table.add_row(f"silver versions kept ({v['customers']} customers x {v['committed_changes_per_customer']} commits)",
                  f"{v['silver_new_versions']:,} in {v['silver_seconds']:.1f} s",
                  f"dbt snapshot: {v['snapshot_new_versions']:,} in {v['snapshot_seconds']:.1f} s")
    f1, fn = r["fixed_change_factor_1"], r["fixed_change_factor_n"]
    table.add_row(f"build after the same {f1['rows_changed']} changed rows: factor 1 / factor {d['factor']}",
                  f"{f1['build_seconds']:.2f} / {fn['build_seconds']:.2f} s", "barely grows")
    table.add_row(f"  its ratio, factor {d['factor']} / factor 1", f"{fn['build_seconds'] / f1['build_seconds']:.2f}",
                  "<= 1.3")
    if "gold_seconds" in fn:
        table.add_row("  the gold marts' node times (they run side by side): factor 1 / factor " + str(d["factor"]),
                      f"{f1['gold_seconds']:.2f} / {fn['gold_seconds']:.2f} s", "")
        ratio = fn["gold_bookkeeping_over_silver_read"]
        table.add_row(f"gold bookkeeping (seen, state, basis) / silver relations the marts read, factor {d['factor']}",
                      f"{fn['gold_bookkeeping_bytes'] / 2**20:.1f} / {fn['silver_read_bytes'] / 2**20:.1f} MB = "
                      + (f"{float(ratio):.3f}" if ratio is not None else "n/a"), "<= 0.5")
    table.add_row(f"freshness to silver p50 / p95 (run --follow, simulate {f['simulate_rate']:.0f} tx/s)",
                  f"{f['silver_p50_s']:.1f} / {f['silver_p95_s']:.1f} s", "p95 <= 2 s")
    table.add_row("freshness to gold p50 / p95", f"{f['gold_p50_s']:.1f} / {f['gold_p95_s']:.1f} s", "p95 <= 5 s")
    table.add_row(f"as-of point lookup, {a['versions']:,} versions, p50", f"{a['p50_ms']:.2f} ms", "<= 1 ms")
    e = r.get("engines")
    if e:
        table.add_row("export bronze to Iceberg (first / after 1% changed)",
                      f"{e['export_seconds']:.1f} / {e['export_incremental_seconds']:.1f} s", "")
        table.add_row("silver+gold full build: PostgreSQL | Spark local (incl. JVM start)",
                      f"{e['postgres_full_seconds']:.1f} | {e['spark_first_seconds']:.1f} s", "")
        table.add_row(f"incremental build after {e['rows_changed']:,} changed rows: PostgreSQL | Spark",
                      f"{e['postgres_incremental_seconds']:.1f} | {e['spark_incremental_seconds']:.1f} s", "")
        if "relations_compared" in e:
            table.add_row("silver relations and gold marts equal on both engines (md5 of rows)",
                          f"{e['relations_compared'] - len(e['relations_differing'])} of {e['relations_compared']}",
                          "all")
    n = r.get("nightly_any_database")
    if n:
        table.add_row(f"nightly `medallion run` after a 1% change ({n['rows_changed']:,} of {n['rows_total']:,} rows), "
                      "the tests' non-Pagila shop schema, from its folder",
                      f"{n['nightly_run_seconds']:.1f} s, " + ("dbt started" if n["started_dbt"] else "no dbt start"),
                      "no dbt start")
    w = r.get("wal_per_update")
    if w:
        table.add_row(f"source WAL per update of a row with a {w['value_chars']:,}-char TOASTed value: "
                      "replica identity DEFAULT / FULL",
                      f"{w['default_wal_bytes_per_update']:,.0f} / {w['full_wal_bytes_per_update']:,.0f} bytes", "")
    if "capture" in r:
        capture_rows(table, r["capture"])
    return table


if __name__ == "__main__":
    main()
