"""The embedded default: a private PostgreSQL cluster under MEDALLION_HOME with wal_level=logical.

initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user and the
data directory belongs to it. The unix socket lives in MEDALLION_HOME/run (or a short
/tmp path when MEDALLION_HOME is too deep for the 107-byte socket path limit).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shlex
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from medallion.errors import ClusterError
from medallion.settings import SOURCE_DB, WAREHOUSE_DB

SOCKET_PATH_LIMIT = 107
SERVER_SETTINGS = {
    "wal_level": "logical",
    "max_replication_slots": "32",
    "max_wal_senders": "32",
    "listen_addresses": "'127.0.0.1'",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    # A lagging slot must not fill the disk: cap the WAL it may pin (status shows the risk).
    "max_slot_wal_keep_size": "'4GB'",
}


def find_bindir() -> Path:
    """The newest installed server, preferring one with wal2json (pgoutput, the default plugin,
    is in every server; wal2json is for pipelines that ask for it). MEDALLION_PG_BINDIR overrides."""
    override = os.environ.get("MEDALLION_PG_BINDIR")
    if override:
        return Path(override)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    for postgres in candidates:
        if (postgres.parent.parent / "lib" / "wal2json.so").exists():
            return postgres.parent
    if candidates:
        return candidates[0].parent
    raise ClusterError("no PostgreSQL server found under /usr/lib/postgresql: run 'make setup'")


@dataclass(frozen=True)
class EmbeddedCluster:
    """Paths and commands of the private cluster; state (the port) is kept in cluster.json."""

    home: Path
    # Extra or different server settings (tests use it to start a misconfigured server).
    overrides: tuple[tuple[str, str], ...] = ()

    @property
    def datadir(self) -> Path:
        return self.home / "pgdata"

    @property
    def logfile(self) -> Path:
        return self.home / "postgres.log"

    @property
    def state_file(self) -> Path:
        return self.home / "cluster.json"

    @property
    def socket_dir(self) -> Path:
        inside = self.home / "run"
        if len(str(inside / ".s.PGSQL.65535")) < SOCKET_PATH_LIMIT:
            return inside
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:10]
        return Path("/tmp") / f"medallion-{digest}"

    @property
    def port(self) -> int:
        try:
            return int(json.loads(self.state_file.read_text())["port"])
        except FileNotFoundError:
            raise ClusterError(f"no embedded cluster in {self.home}: run 'medallion up'") from None

    def dsn(self, dbname: str) -> str:
        """A libpq keyword DSN that psql, psycopg and psycopg2 all accept."""
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={dbname}"

    # -- lifecycle -----------------------------------------------------------------------

    def is_running(self) -> bool:
        if not (self.datadir / "PG_VERSION").exists():
            return False
        result = self._pg_ctl("status", check=False)
        return result.returncode == 0

    def up(self) -> str:
        """Create (first time) and start the cluster, then make sure both databases exist.

        Returns what was done, for the CLI to print. Idempotent."""
        done = []
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb()
            done.append("created")
        if not self.is_running():
            self._choose_port()
            self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.logfile))
            done.append("started")
        self._create_databases()
        return " and ".join(done) if done else "already running"

    def down(self) -> bool:
        """Stop the cluster (fast shutdown). Returns False when it was not running."""
        if not self.is_running():
            return False
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
        return True

    def restart(self, mode: str = "fast") -> None:
        """Restart the running server in place (same port and socket): fast, smart or immediate."""
        self._pg_ctl("restart", "-m", mode, "-w", "-t", "60", "-l", str(self.logfile))

    # -- internals ------------------------------------------------------------------------

    def _as_owner(self, argv: list[str]) -> list[str]:
        """initdb/pg_ctl refuse root: run them as the postgres user then."""
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", "postgres", "--", *argv]

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self._as_owner(argv), capture_output=True, text=True)
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            last = detail[-1] if detail else f"exit code {result.returncode}"
            raise ClusterError(f"{Path(argv[0]).name} failed: {last} (log: {self.logfile})")
        return result

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([str(find_bindir() / "pg_ctl"), "-D", str(self.datadir), *args], check)

    def _prepare_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.datadir, self.socket_dir):
                path.mkdir(exist_ok=True)
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self.logfile.touch()
            os.chown(self.logfile, owner.pw_uid, owner.pw_gid)
            probe = subprocess.run(
                ["runuser", "-u", "postgres", "--", "test", "-w", str(self.datadir)],
                capture_output=True,
            )
            if probe.returncode != 0:
                raise ClusterError(
                    f"the postgres user cannot reach {self.datadir}: give every parent folder "
                    "o+x or set MEDALLION_HOME to a folder it can reach"
                )
        self.datadir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.datadir, 0o700)

    def _initdb(self) -> None:
        self._prepare_dirs()
        self._run(
            [
                str(find_bindir() / "initdb"),
                "-D", str(self.datadir),
                "-U", "postgres",
                "-A", "trust",
                "-E", "UTF8",
                "--locale=C.UTF-8",
            ]
        )

    def _choose_port(self) -> None:
        """Keep the recorded port while it is free, otherwise take a free loopback port."""
        self._prepare_dirs()
        try:
            port = self.port
        except ClusterError:
            port = 0
        if not port or not _port_free(port):
            port = _free_port()
        settings = {**SERVER_SETTINGS, **dict(self.overrides), "port": str(port),
                    "unix_socket_directories": f"'{self.socket_dir}'"}
        conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
        target = self.datadir / "medallion.conf"
        # Written by the owner of the data directory, included from postgresql.conf.
        self._run(["sh", "-c", f"printf %s {shlex.quote(conf)} > {shlex.quote(str(target))}"])
        main_conf = self.datadir / "postgresql.conf"
        if "include_if_exists = 'medallion.conf'" not in self._run(["cat", str(main_conf)]).stdout:
            line = "\ninclude_if_exists = 'medallion.conf'\n"
            self._run(["sh", "-c", f"printf %s {shlex.quote(line)} >> {shlex.quote(str(main_conf))}"])
        self.state_file.write_text(json.dumps({"port": port}) + "\n")

    def _create_databases(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            for db in (SOURCE_DB, WAREHOUSE_DB):
                if not conn.execute("select 1 from pg_database where datname = %s", [db]).fetchone():
                    conn.execute(sql.SQL("create database {}").format(sql.Identifier(db)))


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
