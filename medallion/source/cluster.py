"""The embedded default: a private PostgreSQL cluster under MEDALLION_HOME with wal_level=logical.

initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user and the
data directory belongs to it. The unix socket lives in MEDALLION_HOME/run (or a short
/tmp path when MEDALLION_HOME is too deep for the 107-byte socket path limit).

Locked down: the server listens on no TCP address, only on its unix socket, in a folder (and
a socket file) only the server's OS user may enter; the kernel keeps every other local user
out, so local connections can be trusted without passwords to store (docs/reliability.md). A
cluster created by an older medallion (TCP on 127.0.0.1, trust for everyone) is refused by
every command until `medallion up` locks it down.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shlex
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from medallion.errors import ClusterError
from medallion.settings import DEFAULT_ANALYST_ROLE, SOURCE_DB, WAREHOUSE_DB

SOCKET_PATH_LIMIT = 107
# cluster.json's "locked_down": the version of the access rules below that the running server
# was configured with. A cluster without it was made by an older medallion and is open.
LOCKDOWN_VERSION = 1
# The only way in: the unix socket, for any role, trusted because only the owner reaches it.
# (Logical replication connections match this database line; no physical replication.)
HBA_CONF = """# Written by medallion (medallion/source/cluster.py); rewritten on every 'medallion up'.
# Only the unix socket: TCP is off (listen_addresses = ''), and the socket's folder and file
# are mode 0700, so no other OS user can reach the server. Trust is for its owner alone.
local   all   all   trust
"""
SERVER_SETTINGS = {
    "wal_level": "logical",
    "max_replication_slots": "32",
    "max_wal_senders": "32",
    "listen_addresses": "''",
    "unix_socket_permissions": "0700",
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
    # The read-only login `medallion query` uses; `up` creates it (MEDALLION_ANALYST_ROLE).
    analyst_role: str = DEFAULT_ANALYST_ROLE

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
    def hba_file(self) -> Path:
        return self.datadir / "pg_hba.conf"

    def _state(self) -> dict:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            raise ClusterError(f"no embedded cluster in {self.home}: run 'medallion up'") from None

    @property
    def port(self) -> int:
        return int(self._state()["port"])

    @property
    def locked_down(self) -> bool:
        """True when the server was configured (and started) with the current access rules."""
        try:
            return self._state().get("locked_down") == LOCKDOWN_VERSION
        except ClusterError:
            return False

    def check_locked_down(self) -> None:
        """Refuse an open cluster left by an older medallion: any local user could be its superuser."""
        if not self.locked_down:
            raise ClusterError(
                f"the embedded cluster in {self.home} was set up by an older medallion and lets every local "
                "user in as its superuser: run 'medallion up' to lock it down (it restarts the cluster)")

    def dsn(self, dbname: str, user: str = "postgres") -> str:
        """A libpq keyword DSN that psql, psycopg and psycopg2 all accept: the socket, no password."""
        return f"host={self.socket_dir} port={self.port} user={user} dbname={dbname}"

    # -- lifecycle -----------------------------------------------------------------------

    def is_running(self) -> bool:
        if not (self.datadir / "PG_VERSION").exists():
            return False
        result = self._pg_ctl("status", check=False)
        return result.returncode == 0

    def up(self) -> str:
        """Create (first time) and start the cluster, then make sure both databases exist.

        Returns what was done, for the CLI to print. Idempotent. A running cluster of an older
        medallion (open to every local user) is stopped and started again locked down."""
        done = []
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb()
            done.append("created")
        if self.is_running() and not self.locked_down:
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
            done.append("locked down (it was open to every local user)")
        if not self.is_running():
            self._configure()
            self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.logfile))
            done.append("started")
        self._create_databases()
        self._create_analyst_role()
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

    def _server_user(self) -> pwd.struct_passwd:
        """The OS user the server runs as: postgres when medallion runs as root, else oneself."""
        return pwd.getpwnam("postgres") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())

    def _private_socket_dir(self) -> None:
        """The socket's folder: the server's user's alone (mode 0700), never a folder someone else
        made first (the /tmp fallback could be squatted by another user)."""
        owner = self._server_user()
        path = self.socket_dir
        try:
            path.mkdir(mode=0o700)
            if os.geteuid() == 0:
                os.chown(path, owner.pw_uid, owner.pw_gid)
        except FileExistsError:
            pass
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (owner.pw_uid, os.geteuid()):
            raise ClusterError(
                f"the socket folder {path} is not a folder of {owner.pw_name}'s (another user may have made it): "
                "remove it, or set MEDALLION_HOME to a shorter path so the socket lives inside it")
        if os.geteuid() == 0 and info.st_uid != owner.pw_uid:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        os.chmod(path, 0o700)

    def _prepare_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._private_socket_dir()
        self.logfile.touch(mode=0o600)
        os.chmod(self.logfile, 0o600)  # statements in the log may hold data
        if os.geteuid() == 0:
            owner = self._server_user()
            self.datadir.mkdir(exist_ok=True)
            os.chown(self.datadir, owner.pw_uid, owner.pw_gid)
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
                "--auth-local", "trust",  # _configure narrows pg_hba.conf to the socket alone
                "--auth-host", "reject",
                "-E", "UTF8",
                "--locale=C.UTF-8",
            ]
        )

    def _configure(self) -> None:
        """Before each start: private folders, the socket-only pg_hba.conf, the server settings
        (medallion.conf) and the port; cluster.json records that these rules are in force."""
        self._prepare_dirs()
        self._write_as_owner(self.hba_file, HBA_CONF)
        self._choose_port()

    def _write_as_owner(self, target: Path, text: str) -> None:
        """Files in the data directory are written by the server's user (root-made files would
        be unreadable to it, or leave it a file it cannot replace)."""
        self._run(["sh", "-c", f"umask 077 && printf %s {shlex.quote(text)} > {shlex.quote(str(target))}"])

    def _choose_port(self) -> None:
        """Keep the recorded port while it is free, otherwise take a free loopback port.

        No TCP listener uses it: the port only names the socket file (.s.PGSQL.<port>), and a
        free one keeps it distinct from any server a DSN might still point at on this machine."""
        try:
            port = self.port
        except ClusterError:
            port = 0
        if not port or not _port_free(port):
            port = _free_port()
        settings = {**SERVER_SETTINGS, **dict(self.overrides), "port": str(port),
                    "unix_socket_directories": f"'{self.socket_dir}'"}
        conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
        # Written by the owner of the data directory, included from postgresql.conf.
        self._write_as_owner(self.datadir / "medallion.conf", conf)
        main_conf = self.datadir / "postgresql.conf"
        if "include_if_exists = 'medallion.conf'" not in self._run(["cat", str(main_conf)]).stdout:
            line = "\ninclude_if_exists = 'medallion.conf'\n"
            self._run(["sh", "-c", f"printf %s {shlex.quote(line)} >> {shlex.quote(str(main_conf))}"])
        self.state_file.write_text(json.dumps({"port": port, "locked_down": LOCKDOWN_VERSION}) + "\n")

    def _create_databases(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            for db in (SOURCE_DB, WAREHOUSE_DB):
                if not conn.execute("select 1 from pg_database where datname = %s", [db]).fetchone():
                    conn.execute(sql.SQL("create database {}").format(sql.Identifier(db)))

    def _create_analyst_role(self) -> None:
        """The read-only login `medallion query` runs as: the embedded default is safe with no extra
        step (each build grants it silver and gold; docs/reliability.md)."""
        import psycopg

        from medallion.access import roles

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            roles.ensure_analyst(conn, self.analyst_role)


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
