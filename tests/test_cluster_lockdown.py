"""The embedded cluster lets in its owner alone: no TCP, a socket in a folder only the server's
user may enter. Another OS user is refused by the kernel before PostgreSQL sees a password."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from medallion.errors import ClusterError
from medallion.source.cluster import EmbeddedCluster
from support import medallion, one_error_line, query

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run psql as another OS user")

# What an older medallion configured: TCP on loopback, trust for everyone, an open socket folder.
OPEN_CONF = "listen_addresses = '127.0.0.1'\nunix_socket_permissions = 0777\n"
OPEN_HBA = "local all all trust\nlocal replication all trust\nhost all all 127.0.0.1/32 trust\n"


def as_nobody(*psql_args: str) -> subprocess.CompletedProcess[str]:
    """psql as another OS user (nobody), from a folder it may read."""
    return subprocess.run(["runuser", "-u", "nobody", "--", "psql", "-X", "-w", "-At", *psql_args,
                           "-c", "select current_user"], capture_output=True, text=True, cwd="/", timeout=30)


def test_another_os_user_cannot_connect(cluster: EmbeddedCluster) -> None:
    socket = as_nobody("-h", str(cluster.socket_dir), "-p", str(cluster.port), "-U", "postgres", "postgres")
    assert socket.returncode != 0 and "Permission denied" in socket.stderr, socket.stdout + socket.stderr
    for host in ("127.0.0.1", "localhost"):
        tcp = as_nobody("-h", host, "-p", str(cluster.port), "-U", "postgres", "postgres")
        assert tcp.returncode != 0 and "refused" in tcp.stderr, tcp.stdout + tcp.stderr
    # the owner still gets in (psql, as `eval "$(medallion env)" && psql` does: test_cli)
    assert query(cluster.dsn("postgres"), "show listen_addresses") == [("",)]
    assert query(cluster.dsn("postgres"), "show unix_socket_permissions") == [("0700",)]
    assert stat.S_IMODE(cluster.socket_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(cluster.logfile.stat().st_mode) == 0o600
    hba = subprocess.run(["cat", str(cluster.hba_file)], capture_output=True, text=True).stdout
    assert [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")] == \
        [["local", "all", "all", "trust"]]


def _open_up(old: EmbeddedCluster) -> None:
    """Turn a cluster into what an older medallion left: open to every local user, running."""
    old.down()
    owner = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*owner, "sh", "-c", f"printf %s {shlex.quote(OPEN_CONF)} >> {old.datadir}/medallion.conf && "
                                        f"printf %s {shlex.quote(OPEN_HBA)} > {old.hba_file}"], check=True)
    os.chmod(old.socket_dir, 0o755)
    old.state_file.write_text(json.dumps({"port": old.port}) + "\n")
    old._pg_ctl("start", "-w", "-t", "60", "-l", str(old.logfile))


def test_an_older_open_cluster_is_refused_until_up_locks_it_down(cluster: EmbeddedCluster) -> None:
    home = cluster.home.parent / f"{cluster.home.name}-old"
    shutil.rmtree(home, ignore_errors=True)
    old = EmbeddedCluster(home)
    old.up()
    try:
        _open_up(old)
        assert as_nobody("-h", "127.0.0.1", "-p", str(old.port), "-U", "postgres", "postgres").stdout.strip() \
            == "postgres", "the older configuration should be open (that is what the fix is for)"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION_")}
        env["MEDALLION_HOME"] = str(home)
        line = one_error_line(medallion("status", env=env), 2)
        assert f"the embedded cluster in {home} was set up by an older medallion" in line
        assert "run 'medallion up' to lock it down" in line

        upped = medallion("up", env=env)
        assert upped.returncode == 0, upped.stderr
        assert "locked down" in upped.stdout
        refused = as_nobody("-h", "127.0.0.1", "-p", str(old.port), "-U", "postgres", "postgres")
        assert refused.returncode != 0 and "refused" in refused.stderr
        assert as_nobody("-h", str(old.socket_dir), "-p", str(old.port), "-U", "postgres", "postgres").returncode != 0
        assert medallion("status", env=env).returncode == 0
        assert "already running" in medallion("up", env=env).stdout  # idempotent once locked
    finally:
        old.down()
        shutil.rmtree(home, ignore_errors=True)


def test_a_socket_folder_made_by_another_user_is_refused(tmp_path: Path) -> None:
    """A MEDALLION_HOME too deep for a socket path puts the socket under /tmp, where another user
    could have made the folder first: the cluster refuses to start there."""
    deep = tmp_path / ("d" * 100)
    cluster = EmbeddedCluster(deep)
    assert str(cluster.socket_dir).startswith("/tmp/medallion-")
    shutil.rmtree(cluster.socket_dir, ignore_errors=True)
    cluster.socket_dir.mkdir(mode=0o777)
    nobody = subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout.strip()
    os.chown(cluster.socket_dir, int(nobody), -1)
    try:
        with pytest.raises(ClusterError, match="is not a folder of postgres's"):
            cluster.up()
    finally:
        shutil.rmtree(cluster.socket_dir, ignore_errors=True)


def test_env_names_the_owner_and_the_socket(cluster: EmbeddedCluster) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION_")}
    env["MEDALLION_HOME"] = str(cluster.home)
    result = medallion("env", env=env)
    assert f"host={cluster.socket_dir}" in result.stdout and "password" not in result.stdout
