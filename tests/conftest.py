"""Real PostgreSQL for every test: the project's own embedded cluster, never a mock.

One cluster per test session (under .medallion-test/, or MEDALLION_TEST_HOME; with pytest-xdist
one per worker, the worker's name appended: .medallion-test-gw0/, ...). Pagila is
loaded once into a template database; each test gets its own source database cloned from
it, its own warehouse database and its own replication slot, so tests never share state.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from medallion import pipeline
from medallion.bronze.checks import prepare_source
from medallion.config import load_config
from medallion.selection import resolve
from medallion.settings import PAGILA_CONFIG, REPO_ROOT, Settings
from medallion.source.catalog import read_tables
from pagila_example import pagila
from medallion.source.cluster import EmbeddedCluster
import managed_source
from managed_source import ManagedPipeline, ManagedSource
from support import create_database, drop_database, environment

TEMPLATE_DB = "pagila_template"
_counter = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "file_seconds(n): the whole file takes about n seconds in `make test` "
                                       "(2 cores); the longest files are handed out first")
    # xdist hands out files with the most tests first (--loadscope-reorder): the one-test files,
    # which include the longest, came last and one worker ran them alone while the other idled
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`: --dist loadfile), files in the order the workers get them:
    those marked file_seconds, longest first, then the others with the most tests first (xdist's
    own order). Longest first keeps the workers' last files short, so they finish together."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    declared: dict[Path, float] = {}
    tests: dict[Path, int] = {}
    for item in items:
        marker = item.get_closest_marker("file_seconds")
        declared[item.path] = float(marker.args[0]) if marker else 0.0
        tests[item.path] = tests.get(item.path, 0) + 1
    items.sort(key=lambda item: (-declared[item.path], -tests[item.path]))  # stable: a file's order kept


def _pagila_dir() -> Path:
    configured = os.environ.get("PAGILA_DIR")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "pagila"
    if not (path / "pagila-data.sql").is_file():
        pytest.exit(f"tests need the Pagila files: set PAGILA_DIR (looked in {path})", returncode=2)
    return path


def _test_home() -> Path:
    """MEDALLION_TEST_HOME, else .medallion-test/ in the checkout, else a folder under /tmp.

    As root the cluster runs as the postgres user, who may not be able to enter the
    checkout (a clone inside a private folder): then /tmp is used instead."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # `make test` runs three workers: a cluster each
    suffix = f"-{worker}" if worker else ""
    if os.environ.get("MEDALLION_TEST_HOME"):
        return Path(os.environ["MEDALLION_TEST_HOME"] + suffix)
    home = REPO_ROOT / f".medallion-test{suffix}"
    if os.geteuid() == 0:
        reachable = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(REPO_ROOT)],
                                   capture_output=True).returncode == 0
        if not reachable:
            home = Path(tempfile.mkdtemp(prefix="medallion-test-"))
            home.chmod(0o755)
    return home


@pytest.fixture(scope="session")
def cluster() -> Iterator[EmbeddedCluster]:
    home = _test_home()
    # fsync off: each commit costs ~2 ms instead of ~7 ms here, and the suite commits tens of
    # thousands of times. A server killed (restart -m immediate) still finds its WAL in the OS's
    # cache: only a machine crash could lose it, which no test makes (tests/managed_source.py's
    # servers run so too)
    embedded = EmbeddedCluster(home, overrides=(("fsync", "off"),))
    embedded.up()
    with psycopg.connect(embedded.dsn("postgres"), autocommit=True) as conn:
        for (slot,) in conn.execute("select slot_name from pg_replication_slots").fetchall():
            conn.execute("select pg_drop_replication_slot(%s)", [slot])
        stale = conn.execute(
            "select datname from pg_database where datname ~ '^(src|wh)_[0-9]+$' or datname = %s",
            [TEMPLATE_DB]).fetchall()
        for (db,) in stale:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(db)))
    template_dsn = embedded.dsn(TEMPLATE_DB)
    pagila.load(template_dsn, pagila.locate_files(_pagila_dir(), home / "pagila"))
    with psycopg.connect(template_dsn) as conn:
        # FULL everywhere, as the suite was written for ([capture] replica_identity = "full");
        # the default (primary keys keep their identity) is tested in tests/test_table_routing.py
        prepare_source(conn, resolve(load_config(PAGILA_CONFIG), read_tables(conn)), full=True)
    yield embedded
    embedded.down()


@pytest.fixture
def plugin(request: pytest.FixtureRequest) -> str | None:
    """The output plugin a test captures with: None (the default, pgoutput) unless a module
    parametrizes it indirectly, as the bronze tests do for both plugins."""
    return getattr(request, "param", None)


@pytest.fixture
def settings(cluster: EmbeddedCluster, plugin: str | None) -> Iterator[Settings]:
    """A private pipeline: Pagila source (cloned), empty warehouse, own slot, Pagila's medallion.toml."""
    n = next(_counter)
    src, wh = f"src_{n}", f"wh_{n}"
    source_dsn = create_database(cluster, src, TEMPLATE_DB)
    warehouse_dsn = create_database(cluster, wh)
    prepared = Settings(home=cluster.home, source_dsn=source_dsn, warehouse_dsn=warehouse_dsn,
                        slot=f"medallion_test_{n}", pagila_dir=_pagila_dir(), config_path=PAGILA_CONFIG,
                        plugin=plugin)
    pipeline.prepare_source(prepared)  # the slot's publication (the template has the identities)
    yield prepared
    drop_database(cluster, src)
    drop_database(cluster, wh)


@pytest.fixture
def blank_settings(cluster: EmbeddedCluster) -> Iterator[Settings]:
    """A private pipeline on an empty source database (not Pagila), with no medallion.toml."""
    n = next(_counter)
    src, wh = f"src_{n}", f"wh_{n}"
    source_dsn = create_database(cluster, src)
    warehouse_dsn = create_database(cluster, wh)
    yield Settings(home=cluster.home, source_dsn=source_dsn, warehouse_dsn=warehouse_dsn,
                   slot=f"medallion_test_{n}", pagila_dir=None, config_path=None)
    drop_database(cluster, src)
    drop_database(cluster, wh)


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running the `medallion` command against the test's private pipeline."""
    return environment(settings)


@pytest.fixture(scope="session", params=managed_source.VERSIONS, ids=lambda v: f"pg{v}")
def managed_server(request: pytest.FixtureRequest, cluster: EmbeddedCluster) -> Iterator[ManagedSource]:
    """A separate source server like a managed one (tests/managed_source.py), PostgreSQL 15 and 16;
    started only when a test asks for it (under a second, about 1 s each), once per session."""
    version = request.param
    if managed_source.bindir(version) is None:
        pytest.skip(f"no PostgreSQL {version} here (16 comes from the pgserver wheel: pip install -e '.[dev]')")
    server = managed_source.start(version, cluster.home / f"managed-{version}")
    server.create_capture_role()
    yield server
    server.stop()


@pytest.fixture
def managed(managed_server: ManagedSource, cluster: EmbeddedCluster, tmp_path: Path) -> Iterator[ManagedPipeline]:
    """A user's pipeline on the managed source: an empty database of the owner's, an empty warehouse
    database of the embedded cluster, a slot, and a folder of the user's own (write medallion.toml there)."""
    n = next(_counter)
    database = managed_server.new_database()
    warehouse_dsn = create_database(cluster, f"wh_{n}")
    folder = tmp_path / "project"
    folder.mkdir()
    yield ManagedPipeline(managed_server, database, warehouse_dsn, f"medallion_managed_{n}", folder)
    managed_server.drop_database(database)
    drop_database(cluster, f"wh_{n}")
