"""A source like a managed one (RDS, Cloud SQL, ...): a separate PostgreSQL server reached over
TCP with scram-sha-256 passwords, whose tables belong to a role that is not a superuser.

The server's superuser plays the provider's admin (the DBA) and is reachable only on the
server's private unix socket; everything a user does goes over 127.0.0.1 with a password:
- the owner (OWNER): LOGIN CREATEROLE, owns each test's database, creates and owns its tables;
- the capture role (CAPTURE): created by the DBA from `medallion grant --print-sql`'s
  statement for it, then granted its reads by the owner with `medallion grant`.

Two servers: PostgreSQL 15 from apt (/usr/lib/postgresql/15/bin) and PostgreSQL 16 from the
`pgserver` wheel (its binaries only: no wal2json, pgoutput is built in). initdb and pg_ctl run
as the postgres user when the tests run as root. A fresh data directory per test session.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from support import run_command

OWNER, OWNER_PASSWORD = "shop_owner", "owner-Secret-1"
CAPTURE, CAPTURE_PASSWORD = "medallion_capture", "capture-Secret-2"
VERSIONS = ("15", "16")
_databases = itertools.count(1)


def bindir(version: str) -> Path | None:
    """Where the server binaries of `version` are, or None when they are not installed here."""
    if version == "16":
        spec = importlib.util.find_spec("pgserver")
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / "pginstall" / "bin"
    else:
        path = Path(f"/usr/lib/postgresql/{version}/bin")
    return path if (path / "postgres").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


HBA = """# the DBA: the superuser, on the private socket only
local all postgres trust
# everyone else: TCP on the loopback, passwords (logical replication connections match 'all')
host all all 127.0.0.1/32 scram-sha-256
"""


@dataclass
class ManagedSource:
    version: str
    bindir: Path
    home: Path
    port: int = 0
    started_in: float = 0.0  # seconds initdb + start + roles took

    @property
    def datadir(self) -> Path:
        return self.home / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    def _as_postgres(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def _run(self, *argv: str) -> None:
        result = subprocess.run(self._as_postgres(list(argv)), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr or result.stdout}")

    def start(self) -> None:
        began = time.monotonic()
        if (self.datadir / "postmaster.pid").exists():  # left running by a session that was killed
            self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
        self.socket_dir.mkdir(parents=True, mode=0o700)
        self.datadir.mkdir(mode=0o700)
        if os.geteuid() == 0:
            for path in (self.home, self.socket_dir, self.datadir):
                shutil.chown(path, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "--no-sync",
                  "--auth-local", "trust", "--auth-host", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
        self.port = _free_port()
        conf = {"listen_addresses": "'127.0.0.1'", "port": str(self.port),
                "unix_socket_directories": f"'{self.socket_dir}'", "unix_socket_permissions": "0700",
                "wal_level": "logical", "max_replication_slots": "8", "max_wal_senders": "8",
                "password_encryption": "'scram-sha-256'", "timezone": "'UTC'",
                "fsync": "off", "shared_buffers": "'32MB'"}  # a test server: crash safety is not the point
        text = "".join(f"{k} = {v}\n" for k, v in conf.items())
        self._run("sh", "-c", f"printf %s {shlex.quote(text)} >> {shlex.quote(str(self.datadir / 'postgresql.conf'))}"
                  f" && printf %s {shlex.quote(HBA)} > {shlex.quote(str(self.datadir / 'pg_hba.conf'))}")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.home / "postgres.log"),
                  "-w", "-t", "60", "start")
        with self.dba("postgres") as conn:
            conn.execute(sql.SQL("create role {} login createrole password {}").format(
                sql.Identifier(OWNER), sql.Literal(OWNER_PASSWORD)))
        self.started_in = time.monotonic() - began

    def stop(self) -> None:
        subprocess.run(self._as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                                          "-w", "stop"]), capture_output=True)

    # -- connections ------------------------------------------------------------------------

    def dba(self, dbname: str) -> psycopg.Connection:
        """The provider's admin (superuser), on the private socket: only for what a DBA does."""
        return psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname=dbname,
                               autocommit=True)

    def dsn(self, dbname: str, user: str = OWNER, password: str = OWNER_PASSWORD) -> str:
        """A user's DSN: TCP on the loopback, a password (scram-sha-256)."""
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} password={password}"

    def capture_dsn(self, dbname: str) -> str:
        return self.dsn(dbname, CAPTURE, CAPTURE_PASSWORD)

    def new_database(self) -> str:
        """A database of the owner's (made by the DBA, as a provider's console does)."""
        name = f"shop_{next(_databases)}"
        with self.dba("postgres") as conn:
            conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(OWNER)))
        return name

    def drop_database(self, name: str) -> None:
        with self.dba("postgres") as conn:
            for (slot,) in conn.execute("select slot_name from pg_replication_slots where database = %s",
                                        [name]).fetchall():
                conn.execute("select pg_drop_replication_slot(%s)", [slot])
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    def create_capture_role(self) -> None:
        """The DBA's part of the capture role (once per server): the statement `medallion grant
        --print-sql` gives the admin, then a password for it."""
        from medallion.access import roles

        with self.dba("postgres") as conn:
            if roles.role_exists(conn, CAPTURE):
                return
            for statement in roles.capture_role_statements(CAPTURE):
                conn.execute(statement)
            conn.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(CAPTURE),
                                                                    sql.Literal(CAPTURE_PASSWORD)))


def start(version: str, home: Path) -> ManagedSource:
    found = bindir(version)
    if found is None:
        raise RuntimeError(f"no PostgreSQL {version} binaries here")
    server = ManagedSource(version, found, home)
    server.start()
    print(f"\nmanaged source PostgreSQL {version} started in {server.started_in:.2f}s", file=sys.stderr)
    return server


def run_medallion(*args: str, env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The `medallion` command run from the user's own folder (its medallion.toml is found there)."""
    return run_command(list(args), env=env, cwd=str(cwd), timeout=timeout)


def user_environment(source_dsn: str, warehouse_dsn: str, slot: str, home: Path) -> dict[str, str]:
    """The environment of a user who set only what the README asks for (no MEDALLION_CONFIG: ./medallion.toml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION_") and k != "PAGILA_DIR"}
    env.update(MEDALLION_SOURCE_DSN=source_dsn, MEDALLION_WAREHOUSE_DSN=warehouse_dsn, MEDALLION_SLOT=slot,
               MEDALLION_HOME=str(home))
    return env


@dataclass
class ManagedPipeline:
    """One test's pipeline on a managed source: who runs a command decides the source DSN."""

    server: ManagedSource
    database: str
    warehouse_dsn: str
    slot: str
    folder: Path  # the user's project folder: medallion.toml goes here, commands run here

    @property
    def owner_dsn(self) -> str:
        return self.server.dsn(self.database)

    @property
    def capture_dsn(self) -> str:
        return self.server.capture_dsn(self.database)

    def medallion(self, *args: str, as_owner: bool = False, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`medallion ...` from the user's folder, as the tables' owner or (the default) the capture role."""
        env = user_environment(self.owner_dsn if as_owner else self.capture_dsn, self.warehouse_dsn, self.slot,
                               self.folder / ".medallion")
        return run_medallion(*args, env=env, cwd=self.folder, timeout=timeout)

    def owner(self, statements: str | sql.Composable) -> None:
        """Statements run by the tables' owner, each script in its own transaction."""
        with psycopg.connect(self.owner_dsn, autocommit=True) as conn:
            conn.execute(statements)
