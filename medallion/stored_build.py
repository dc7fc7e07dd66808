"""`medallion build` without starting dbt, when the last dbt build left everything it needs.

A dbt build costs seconds before it changes a row (its import, parsing, ~70 nodes each with
catalog lookups), while an incremental batch of a model runs in milliseconds. Each incremental
materialization already stores the statements of its next batch (medallion.follow_step, the ones
`run --follow` runs), and each incremental test compiles to SQL that reads its stretch's bounds
when it runs (macros/silver/temporal_tests.sql). So after a dbt build of the whole project,
this module records what that build was: a fingerprint of the project (its files, the engine's
macros, the versions), the DAG order of its models and tests, and the tests as they compiled.
The next `medallion build` of the same project runs those stored statements and tests in that
order, as many at a time as dbt's threads, and gives what dbt would have given: dbt's own statements on the same
rows (the follow test and the build tests compare with full refreshes).

Whatever they cannot carry goes to dbt, which stores everything anew: a changed project (any
file, a new captured table, a new column), a model no step refreshes (a plain table, a seed,
a snapshot, hooks), a schema change, truncate or re-sync in bronze's new stretch, a gold stretch
a mart has not seen, a mart built whole, a test compiled for a whole table, --full-refresh,
--full-tests, a selection. `medallion build --dbt` always runs dbt. Each reason is a phrase a
user reads after "dbt started: " on the build's last line (the changed file named: the
fingerprint's parts are recorded with it). The first build's tests are stored too: a model
never tested compiles them for a stretch that starts before bronze's first row
(temporal_tests.sql), so the build after a first build or a --full-refresh needs no dbt.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import psycopg
import yaml
from psycopg import sql as pg_sql
from psycopg.types.json import Jsonb

import medallion
from medallion import steps
from medallion.db import connect
from medallion.sqlfiles import named_sql
from medallion.errors import BuildFailed
from medallion.gold.plan_cache import planner_digest
from medallion.silver.project import ENGINE_DIR, BuildProject

SQL = named_sql("medallion", "stored_build.sql")
STEPPED = {"system_versioned", "current_state", "gold_mart"}  # materializations that store their steps
NOTHING_TO_REFRESH = {"view", "ephemeral", "current_view"}  # their definition is the fingerprinted project
OWN_HOOKS = {"medallion-on-run-start", "medallion-on-run-end"}  # the warehouse's tables; tested_to (below)
NOT_PROJECT_FILES = {"target", "logs", "dbt_packages", "__pycache__", "package-lock.yml"}


def workers() -> int:
    """Models and tests at a time, each on a connection of its own: as many as dbt's threads."""
    profile = yaml.safe_load((ENGINE_DIR / "profiles.yml").read_text(encoding="utf-8"))["medallion"]
    return int(profile["outputs"][profile["target"]].get("threads", 1))


GENERATED, ENGINE, OWN = "0", "1", "2"  # the roots of a fingerprint's files (fingerprint_parts)
_parts_of: dict[str, dict[str, str]] = {}  # fingerprint -> its parts, to say what changed (changed_since)


def project_fingerprint(warehouse: str, project: BuildProject) -> str:
    """What decides the statements dbt compiles: every file of the build project (the generated
    silver), of the engine's macros and of the project's own dbt project, the versions of
    medallion and dbt, and bronze's record of the tables' schemas over time. Its parts are kept
    (and recorded with the build) so that a changed fingerprint can name what changed."""
    return fingerprint_of(fingerprint_parts(warehouse, project))


def fingerprint_parts(warehouse: str, project: BuildProject) -> dict[str, str]:
    """{'schemas': digest, 'versions': text, '<root>:<file>': digest} (roots GENERATED, ENGINE, OWN)."""
    with connect(warehouse, "warehouse") as conn:
        schemas = conn.execute(SQL["schemas"]).fetchone()[0]
    own = [Path(project.dbt_project)] if project.dbt_project else []
    return parts_of(schemas, [project.silver_path or project.path, ENGINE_DIR] + own)


def parts_of(schemas: str, roots: list[Path]) -> dict[str, str]:
    """The fingerprint's parts from bronze's schema digest and the roots (silver's generated
    package, the engine's macros, your dbt project): the same whether `medallion build` or a
    plain dbt run in your project computes them (dbt_setup.py)."""
    parts = {"schemas": schemas}
    parts["versions"] = ", ".join([f"{package} {metadata.version(package)}" for package in ("dbt-core", "dbt-postgres")]
                                  + [f"medallion {medallion.__version__} (gold planner {planner_digest()})"])
    for index, root in enumerate(roots):
        for path in _files(root):
            parts[f"{index}:{path.relative_to(root).as_posix()}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return parts


def fingerprint_of(parts: dict[str, str]) -> str:
    """The fingerprint of its parts, which are kept to name what changed (changed_since)."""
    fingerprint = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    if len(_parts_of) > 8:  # a long-running follower fingerprints each project it meets
        _parts_of.clear()
    _parts_of[fingerprint] = parts
    return fingerprint


def changed_since(then: dict[str, str] | None, fingerprint: str) -> str:
    """Why the project is not the one the last dbt build ran, in a user's words: which of its
    files changed (the project's own first), or bronze's tables, or the versions."""
    now = _parts_of.get(fingerprint)
    if not then or not now:
        return "the project changed since the last build (its files, bronze's tables or medallion's version)"
    files = {root: sorted(k.split(":", 1)[1] for k in then.keys() | now.keys()
                          if k.startswith(root + ":") and then.get(k) != now.get(k))
             for root in (OWN, GENERATED, ENGINE)}
    if files[OWN]:
        return f"the project's files changed since the last build ({_some(files[OWN])})"
    if then.get("schemas") != now.get("schemas"):
        return "bronze captured a new table or a schema change since the last build"
    if then.get("versions") != now.get("versions"):
        return f"medallion or dbt was upgraded since the last build (now {now.get('versions')})"
    if files[GENERATED]:
        return f"the silver project medallion generates changed since the last build ({_some(files[GENERATED])})"
    if files[ENGINE]:
        return f"medallion's dbt macros changed since the last build ({_some(files[ENGINE])})"
    return "the project changed since the last build"


def _some(names: list[str]) -> str:
    return ", ".join(names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")


def _files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in NOT_PROJECT_FILES and not d.startswith("."))
        found += [Path(folder) / n for n in sorted(names) if not n.startswith(".") and n not in NOT_PROJECT_FILES]
    return found


# What a dbt build records

def record(warehouse: str, fingerprint: str, manifest_path: Path, tested: bool) -> None:
    """After a successful dbt build of every model: what the next build needs to run without dbt
    (tested: the build ran the tests, whose compiled SQL is kept)."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    plan = {**build_plan(manifest), "parts": _parts_of.get(fingerprint)}
    tests = test_plan(manifest) if tested else None
    with connect(warehouse, "warehouse", autocommit=True) as conn:
        conn.execute(SQL["create"])
        conn.execute(SQL["save"], {"fingerprint": fingerprint, "plan": Jsonb(plan),
                                   "tests": Jsonb(tests) if tests is not None else None})


def _relation(node: dict) -> str:
    return f"{node['schema']}.{node.get('alias') or node['name']}"


def _ancestors(nodes: dict, uid: str, memo: dict[str, set[str]]) -> set[str]:
    """Every node uid runs after (itself excluded), through views too."""
    if uid not in memo:
        memo[uid] = set()
        for parent in nodes.get(uid, {}).get("depends_on", {}).get("nodes", []):
            if parent in nodes:
                memo[uid] |= {parent} | _ancestors(nodes, parent, memo)
    return memo[uid]


def build_plan(manifest: dict) -> dict:
    """{'steps': {uid: {'relation', 'after': [uids]}}, 'tables': {uid: {'relation', 'sql', 'after'}},
    'blocked': [why dbt must build]}: the models a stored step refreshes, and the plain tables
    refilled from their compiled SQL, each after the refreshed models and the tests upstream of
    it (as dbt build orders them)."""
    nodes = manifest["nodes"]
    memo: dict[str, set[str]] = {}
    blocked, stepped, tables = [], {}, {}
    for uid, node in nodes.items():
        kind = node["resource_type"]
        if kind == "model":
            materialized = node["config"].get("materialized")
            if materialized in STEPPED:  # (its hooks are part of its stored step: follow.sql)
                stepped[uid] = _relation(node)
            elif materialized == "table" and _refillable(node):
                tables[uid] = _relation(node)
            elif materialized not in NOTHING_TO_REFRESH:
                how = f"{materialized} with hooks" if materialized == "table" else materialized
                blocked.append(f"the model {node['name']} is materialized as {how}, which only dbt "
                               "refreshes (as a table without hooks, a view or medallion's gold_mart it would not "
                               "need dbt)")
        elif kind == "snapshot":
            blocked.append(f"the project has a {kind} ({node['name']}), which only dbt builds")
        # (a seed: its file is part of the fingerprint, so an unchanged project's seeds hold it already)
        elif kind == "operation" and node["name"].rsplit("-", 1)[0] not in OWN_HOOKS:
            blocked.append(f"the project has a hook ({node['name']}), which only dbt runs")
    if manifest.get("unit_tests"):
        blocked.append("the project has unit tests, which only dbt runs")
    tests_of = _tests_by_node(nodes)
    refreshed = stepped | tables
    plan_steps, plan_tables = {}, {}
    for uid, relation in refreshed.items():
        upstream = _ancestors(nodes, uid, memo)
        after = sorted({u for u in upstream if u in refreshed} | {t for u in upstream for t in tests_of.get(u, ())})
        if uid in stepped:
            plan_steps[uid] = {"relation": relation, "after": after}
        else:
            plan_tables[uid] = {"relation": relation, "after": after, "sql": nodes[uid]["compiled_code"],
                                "ident": [nodes[uid]["schema"], nodes[uid].get("alias") or nodes[uid]["name"]]}
    return {"steps": plan_steps, "tables": plan_tables, "blocked": blocked}


def _refillable(node: dict) -> bool:
    """A table model the stored build refills (delete, insert its compiled SELECT, in one
    transaction: its columns are the project's, unchanged, and views over it stay): compiled by
    the build, no hooks of its own to run."""
    config = node["config"]
    return bool(node.get("compiled_code")) and not config.get("pre-hook") and not config.get("post-hook")


def _tests_by_node(nodes: dict) -> dict[str, list[str]]:
    tests: dict[str, list[str]] = {}
    for uid, node in nodes.items():
        if node["resource_type"] == "test":
            for parent in node["depends_on"]["nodes"]:
                tests.setdefault(parent, []).append(uid)
    return tests


def test_plan(manifest: dict) -> list[dict]:
    """Each test as it compiled, wrapped as dbt's get_test_sql wraps it, with the stepped models
    it runs after and the models whose tested_to it moves (as medallion_mark_tested does)."""
    nodes = manifest["nodes"]
    memo: dict[str, set[str]] = {}
    project = manifest["metadata"].get("project_name")
    tests = []
    for uid, node in nodes.items():
        if node["resource_type"] != "test":
            continue
        config = node["config"]
        code = node.get("compiled_code")
        if code is None:
            scope = "not compiled"
        elif "-- medallion: whole table test" in code:
            scope = "whole table"
        else:
            scope = "incremental" if "-- medallion: incremental test" in code else "static"
        parents = [p for p in node["depends_on"]["nodes"] if p in nodes]
        upstream = set(parents) | {a for p in parents for a in _ancestors(nodes, p, memo)}
        covers = {_relation(nodes[p]) for p in parents if p.startswith("model.")}
        history = ((node.get("test_metadata") or {}).get("kwargs") or {}).get("history")
        if history and f"model.{project}.{history}" in nodes:
            covers.add(_relation(nodes[f"model.{project}.{history}"]))
        fail_calc = config.get("fail_calc") or "count(*)"
        limit = f"\nlimit {config['limit']}" if config.get("limit") is not None else ""
        sql = (f"select {fail_calc} as failures, {fail_calc} {config.get('warn_if') or '!= 0'} as should_warn, "
               f"{fail_calc} {config.get('error_if') or '!= 0'} as should_error\nfrom (\n{code}{limit}\n) "
               "as dbt_internal_test") if code is not None else None
        tests.append({"id": uid, "label": _label(node, covers), "sql": sql, "scope": scope, "severity": str(config.get("severity") or "error"),
                      "store_failures": bool(config.get("store_failures")), "after": sorted(upstream),
                      "covers": sorted(covers), "error_if": config.get("error_if") or "!= 0"})
    return tests


def _label(node: dict, covers: set[str]) -> str:
    """A test as a user knows it: its kind and the tables it checks (its unique id is a hash)."""
    kind = (node.get("test_metadata") or {}).get("name") or node["name"]
    return f"the test {kind} of {', '.join(sorted(covers))}" if covers else f"the test {kind}"


def _test_name(test: dict) -> str:
    return test.get("label") or test["id"]


# A build from what was recorded

@dataclass
class StoredRun:
    """What a build without dbt did: its nodes (dbt's unique ids), or why dbt must build instead."""

    results: list[tuple[str, str, float, str | None]] = field(default_factory=list)  # id, status, s, message
    dbt_reason: str | None = None


@dataclass(frozen=True)
class Refill:
    """A plain table model refilled from the SELECT dbt compiled for it."""

    relation: str  # schema.identifier, as a user reads it
    ident: tuple[str, str]
    sql: str


@dataclass(frozen=True)
class Recorded:
    """What the last dbt build left for this one: its plan, its tests (those this build runs)
    and the stored steps by model."""

    plan: dict
    tests: list[dict]
    steps: dict[str, steps.Step]


def recorded(conn: psycopg.Connection, fingerprint: str, tests: bool) -> Recorded | str:
    """What the last dbt build recorded, or why dbt must build instead."""
    if conn.execute("select to_regclass('medallion.stored_build') is null").fetchone()[0] \
            or (row := conn.execute(SQL["read"]).fetchone()) is None:
        return "the first build of this warehouse stores what the next builds run without dbt"
    fingerprint_then, plan, recorded_tests = row
    if fingerprint_then != fingerprint:
        return changed_since(plan.get("parts"), fingerprint)
    if plan["blocked"]:
        return f"{plan['blocked'][0]}; every build of this project starts dbt"
    if tests and recorded_tests is None:
        return ("the last build ran no tests it could store (--skip-tests, or --full-tests on a changed project); "
                "this build stores them")
    for test in recorded_tests if tests else []:
        if test["store_failures"]:
            return f"{_test_name(test)} stores its failures in a table (store_failures), which only dbt does"
        if test["scope"] == "not compiled":
            return f"the last build did not compile {_test_name(test)}; this build stores it"
        if test["scope"] == "whole table":
            return (f"the last build checked whole tables after a truncate, a re-sync or a schema change in bronze "
                    f"({_test_name(test)}); this build stores the tests for changed keys again")
    stored = {s.model: s for s in steps.load_steps(conn)}
    for entry in plan["steps"].values():
        step = stored.get(entry["relation"])
        if step is not None and step.step_sql is None and step.project_fingerprint == fingerprint:
            return (f"{entry['relation']} was built whole at the last build (its first build or a --full-refresh), "
                    "which stores no statements for a change; this build stores them")
        if step is None or step.step_sql is None or step.project_fingerprint != fingerprint:
            return (f"{entry['relation']} was last built by something other than 'medallion build' (e.g. Dagster), "
                    "which stores no statements to run without dbt; this build stores them")
    return Recorded(plan, recorded_tests if tests else [], stored)


def run(warehouse: str, fingerprint: str, tests: bool) -> StoredRun:
    """Run the stored steps and tests in the recorded order; StoredRun.dbt_reason says why
    not (nothing applied) or where a step handed over to dbt (the rest continues from the
    watermarks). Raises BuildFailed when a test fails, as dbt build would."""
    with connect(warehouse, "warehouse") as conn:
        found = recorded(conn, fingerprint, tests)
        conn.commit()
        if isinstance(found, str):
            return StoredRun(dbt_reason=found)
        models = sorted({m for t in found.tests for m in t["covers"]})
        tested_to = {model: tested for model, _, tested in conn.execute(SQL["watermarks"], {"models": models})}
        conn.commit()

        jobs: dict[str, tuple[list[str], object]] = {}
        for uid, entry in found.plan["steps"].items():
            step = found.steps[entry["relation"]]
            jobs[uid] = (entry["after"], (step, tested_to.get(step.model)))
        for uid, entry in found.plan.get("tables", {}).items():
            jobs[uid] = (entry["after"], Refill(entry["relation"], tuple(entry["ident"]), entry["sql"]))
        for test in found.tests:
            jobs[test["id"]] = (test["after"], test)
        outcome = _Scheduler(warehouse, jobs, found.plan.get("durations") or {}).run()
        failed = [r for r in outcome.results if r[1] == "fail"]
        if failed:
            uid, _, _, message = failed[0]
            more = f" (and {len(failed) - 1} more failing: {', '.join(r[0] for r in failed[1:4])})" \
                if len(failed) > 1 else ""
            raise BuildFailed(f"build failed at {uid}: {message}{more}; run 'medallion build --dbt' for dbt's log "
                              "of it", node=uid, failed=[r[0] for r in failed])
        if outcome.dbt_reason is None and found.tests and not any(r[1] == "warn" for r in outcome.results):
            conn.execute(SQL["mark_tested"], {"models": models})
            conn.commit()
        if outcome.dbt_reason is None:
            conn.execute(SQL["durations"], {"durations": Jsonb({uid: round(seconds, 3)
                                                                for uid, _, seconds, _ in outcome.results})})
            conn.commit()
    return outcome


def _longest_paths(jobs: dict[str, tuple[list[str], object]], durations: dict[str, float]) -> dict[str, float]:
    """Per job, the seconds of the longest chain of jobs from it to the end of the build, by the
    durations the last build measured (0 for a job it did not run)."""
    children: dict[str, list[str]] = {uid: [] for uid in jobs}
    for uid, (after, _) in jobs.items():
        for parent in after:
            if parent in children:
                children[parent].append(uid)
    found: dict[str, float] = {}
    for uid in reversed(_ordered(jobs)):
        found[uid] = float(durations.get(uid, 0.0)) + max((found[c] for c in children[uid]), default=0.0)
    return found


def _ordered(jobs: dict[str, tuple[list[str], object]]) -> list[str]:
    """The jobs, each after everything in its `after` (a topological order)."""
    order: list[str] = []
    placed: set[str] = set()
    todo = list(jobs)
    while todo:
        waiting = []
        for uid in todo:
            if all(a in placed or a not in jobs for a in jobs[uid][0]):
                order.append(uid)
                placed.add(uid)
            else:
                waiting.append(uid)
        if len(waiting) == len(todo):  # a cycle cannot come from dbt's graph; keep the rest as they are
            order += waiting
            break
        todo = waiting
    return order


class _Scheduler:
    """Runs the jobs (steps and tests), each once everything in its `after` is done, as many at
    a time as dbt's threads, on connections of their own. A failing test skips what runs after
    it (as dbt build); a step that needs dbt stops the scheduling and hands over. Of the jobs
    ready, those on the longest path to the end go first (by the last build's durations): a
    fact's history then starts before a dozen idle dimensions, not after them."""

    def __init__(self, warehouse: str, jobs: dict[str, tuple[list[str], object]],
                 durations: dict[str, float] | None = None) -> None:
        self.warehouse = warehouse
        self.jobs = jobs
        self.priority = _longest_paths(jobs, durations or {})
        self.local = threading.local()
        self.connections: list[psycopg.Connection] = []
        self.lock = threading.Lock()

    def _conn(self) -> psycopg.Connection:
        if getattr(self.local, "conn", None) is None:
            self.local.conn = connect(self.warehouse, "warehouse")
            with self.lock:
                self.connections.append(self.local.conn)
        return self.local.conn

    def _name(self, uid: str) -> str:
        job = self.jobs[uid][1]
        return _test_name(job) if isinstance(job, dict) else job.relation if isinstance(job, Refill) else job[0].model

    def _one(self, uid: str) -> tuple[str, str, float, str | None]:
        began = time.perf_counter()
        try:
            return self._run_job(uid, began)
        except psycopg.Error as exc:
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            return uid, "error", time.perf_counter() - began, first

    def _run_job(self, uid: str, began: float) -> tuple[str, str, float, str | None]:
        conn = self._conn()
        job = self.jobs[uid][1]
        if isinstance(job, dict):  # a test
            with conn.transaction():
                failures, should_warn, should_error = conn.execute(job["sql"]).fetchone()
            if should_error and job["severity"].lower() == "error":
                status, message = "fail", f"Got {failures} results, configured to fail if {job['error_if']}"
            elif should_warn:
                status, message = "warn", f"Got {failures} results"
            else:
                status, message = "pass", None
            return uid, status, time.perf_counter() - began, message
        if isinstance(job, Refill):  # a plain table: its compiled SELECT again, in one transaction
            relation = pg_sql.Identifier(*job.ident)
            with conn.transaction():
                conn.execute(pg_sql.SQL(SQL["refill_delete"]).format(relation=relation))
                conn.execute(pg_sql.SQL(SQL["refill_insert"]).format(relation=relation, select=pg_sql.SQL(job.sql)))
            return uid, "success", time.perf_counter() - began, None
        step, tested_to = job
        if step.layer == steps.SILVER:
            _, needs_dbt = steps.apply_silver(conn, step, checked_from=tested_to)
        else:
            needs_dbt = steps.apply_gold(conn, step)
        return uid, "needs dbt" if needs_dbt else "success", time.perf_counter() - began, needs_dbt

    def run(self) -> StoredRun:
        outcome = StoredRun()
        pending = dict(self.jobs)
        done: set[str] = set()
        skipped: set[str] = set()
        running: dict[Future, str] = {}
        try:
            with ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="medallion-stored") as pool:
                while pending or running:
                    if outcome.dbt_reason is None:
                        self._submit_ready(pool, pending, done, skipped, running)
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        uid = running.pop(future)
                        result = future.result()
                        outcome.results.append(result)
                        if result[1] == "needs dbt":
                            outcome.dbt_reason = outcome.dbt_reason or result[3]
                        elif result[1] == "error":  # e.g. a table dropped by hand: dbt rebuilds or says why
                            outcome.dbt_reason = outcome.dbt_reason or (
                                f"the stored statements of {self._name(uid)} failed ({result[3]}; e.g. a table "
                                "dropped by hand), so dbt rebuilds it")
                        elif result[1] == "fail":
                            skipped.add(uid)
                        else:
                            done.add(uid)
        finally:
            for conn in self.connections:
                conn.close()
        return outcome

    def _submit_ready(self, pool: ThreadPoolExecutor, pending: dict, done: set[str], skipped: set[str],
                      running: dict[Future, str]) -> None:
        changed = True
        while changed:
            changed = False
            for uid, (after, _) in sorted(pending.items(), key=lambda item: -self.priority[item[0]]):
                if any(a in skipped for a in after):
                    skipped.add(uid)
                    del pending[uid]
                    changed = True
                elif all(a in done or a not in self.jobs for a in after):
                    running[pool.submit(self._one, uid)] = uid
                    del pending[uid]
