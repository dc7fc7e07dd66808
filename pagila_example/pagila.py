"""Find, fetch and load the Pagila sample database into the source.

The files come from PAGILA_DIR, or from a cached download of the pinned upstream commit whose
sha256 sums are checked. They are never part of this repository.
"""

from __future__ import annotations

import hashlib
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from medallion.db import connect, redact
from medallion.errors import MedallionError, PagilaFilesMissing

UPSTREAM_COMMIT = "e0e35a666f31a786b9d3c06cb83799fc46db25d4"
UPSTREAM_URL = "https://raw.githubusercontent.com/devrimgunduz/pagila/{commit}/{name}"
FILES = {
    "pagila-schema.sql": "8ce358e4c8014087b85296694a0893887bd7a4190e3ce407f2721b86b98e5707",
    "pagila-data.sql": "880580fb2cd4daaa99f290ced264988cdd657b3158be63cd281466f796f6dbf2",
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locate_files(pagila_dir: Path | None, cache_dir: Path,
                 log: Callable[[str], None] = lambda _: None) -> dict[str, Path]:
    """The schema and data files: from PAGILA_DIR, else from the cache, else downloaded."""
    if pagila_dir is not None:
        missing = [name for name in FILES if not (pagila_dir / name).is_file()]
        if missing:
            raise PagilaFilesMissing(
                f"PAGILA_DIR={pagila_dir} lacks {', '.join(missing)}: point PAGILA_DIR at a folder "
                "holding the Pagila files, or unset it to download them"
            )
        return {name: pagila_dir / name for name in FILES}
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, expected in FILES.items():
        path = cache_dir / name
        if not path.is_file() or sha256(path) != expected:
            url = UPSTREAM_URL.format(commit=UPSTREAM_COMMIT, name=name)
            log(f"downloading {url}")
            part = path.with_suffix(".part")
            try:
                urllib.request.urlretrieve(url, part)
            except OSError as exc:
                raise PagilaFilesMissing(
                    f"cannot download {name} ({exc}): set PAGILA_DIR to a folder holding the Pagila files"
                ) from None
            if sha256(part) != expected:
                part.unlink()
                raise PagilaFilesMissing(f"{url} does not match its pinned sha256: set PAGILA_DIR instead")
            part.rename(path)
        paths[name] = path
    return paths


def _maintenance_dsn(dsn: str) -> tuple[str, str]:
    """The same server's 'postgres' database, and the source database's name."""
    params = conninfo_to_dict(dsn)
    dbname = str(params.get("dbname") or params.get("user") or "postgres")
    params["dbname"] = "postgres"
    return make_conninfo(**params), dbname


def recreate_database(dsn: str) -> None:
    """Drop and create the source database; its logical slots go first (they pin it)."""
    admin_dsn, dbname = _maintenance_dsn(dsn)
    if dbname == "postgres":
        raise MedallionError("refusing to recreate the 'postgres' database: give the source DSN its own dbname")
    with connect(admin_dsn, "source", autocommit=True) as conn:
        for (slot,) in conn.execute(
            "select slot_name from pg_replication_slots where database = %s", [dbname]
        ).fetchall():
            conn.execute("select pg_drop_replication_slot(%s)", [slot])
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))


def _without_owner_statements(text: str) -> str:
    """pg_dump's 'ALTER ... OWNER TO postgres' fails where no such role exists; the loader owns all."""
    return "\n".join(
        line for line in text.splitlines() if not (line.startswith("ALTER ") and " OWNER TO " in line)
    )


def run_sql_file(dsn: str, path: Path) -> None:
    """psql runs pg_dump output (COPY ... FROM stdin) as it was meant to be run."""
    script = _without_owner_statements(path.read_text(encoding="utf-8"))
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"],
        input=script, capture_output=True, text=True,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"psql exit code {result.returncode}"]
        reason = next((line for line in lines if "ERROR" in line or "FATAL" in line), lines[0])
        raise MedallionError(f"loading {path.name} into {redact(dsn)} failed: {redact(reason)}")


def load(dsn: str, files: dict[str, Path]) -> dict[str, int]:
    """(Re)create the source from the Pagila files; returns row counts of the main tables."""
    recreate_database(dsn)
    run_sql_file(dsn, files["pagila-schema.sql"])
    run_sql_file(dsn, files["pagila-data.sql"])
    with connect(dsn, "source") as conn:
        return row_counts(conn)


# Pagila's base tables (a partitioned table by its root), for the load report and the tests.
TABLES: tuple[str, ...] = (
    "actor", "address", "category", "city", "country", "customer", "film", "film_actor", "film_category",
    "inventory", "language", "payment", "rental", "staff", "store",
)


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        query = sql.SQL("select count(*) from {}").format(sql.Identifier("public", table))
        counts[table] = conn.execute(query).fetchone()[0]
    return counts
