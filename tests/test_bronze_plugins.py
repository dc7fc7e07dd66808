"""A source whose server cannot load wal2json still captures: pgoutput, the default, is built
into every PostgreSQL.

The test cluster has wal2json installed, so the source database is made into one without it:
its sessions (walsenders included) look for output plugins in a folder that holds pgoutput
alone (dynamic_library_path, set for that database only).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from medallion import pipeline
from medallion.settings import Settings
from support import execute, query


@pytest.fixture
def without_wal2json(settings: Settings) -> Settings:
    libdir = Path(query(settings.source_dsn, "select setting from pg_config where name = 'PKGLIBDIR'")[0][0])
    folder = Path(tempfile.mkdtemp(prefix="pgoutput-only-"))
    folder.chmod(0o755)
    (folder / "pgoutput.so").symlink_to(libdir / "pgoutput.so")
    dbname = psycopg.conninfo.conninfo_to_dict(settings.source_dsn)["dbname"]
    execute(settings.source_dsn, sql.SQL("alter database {} set dynamic_library_path = {}").format(
        sql.Identifier(dbname), sql.Literal(str(folder))))
    return settings


def test_a_source_without_wal2json_captures_with_pgoutput(without_wal2json: Settings) -> None:
    src, wh = without_wal2json.source_dsn or "", without_wal2json.warehouse_dsn or ""
    # the server really cannot decode with wal2json here
    with psycopg.connect(src, autocommit=True) as conn, pytest.raises(psycopg.errors.UndefinedFile):
        conn.execute("select pg_create_logical_replication_slot('probe_wal2json', 'wal2json')")

    assert os.environ.get("MEDALLION_PLUGIN") in (None, "", "pgoutput")
    pipeline.ingest(without_wal2json)
    execute(src, "update customer set email = 'no.wal2json@example.org' where customer_id = 3")
    execute(src, "delete from payment where payment_id = (select min(payment_id) from payment)")
    report = pipeline.ingest(without_wal2json)

    assert report.plugin == "pgoutput"
    assert report.changes == 2
    assert query(wh, "select op, full_row ->> 'email' from bronze.br_customer_cdc where op = 'U'") == \
        [("U", "no.wal2json@example.org")]
    assert query(wh, "select count(*) from bronze.br_customer_cdc where op = 'R'") == \
        query(src, "select count(*) from customer")
    assert query(wh, "select count(*) from bronze.br_payment_cdc where op = 'D'") == [(1,)]
