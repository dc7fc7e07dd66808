"""`medallion ui`: `dagster dev` for one pipeline, in the user's folder, stopped on the first signal.

Kept free of Dagster imports at module level, so that the `medallion` command stays quick to start.
Dagster runs in the folder `medallion ui` was started in, with the project file the command
resolved (MEDALLION_CONFIG or ./medallion.toml) passed on, so the code location loads the user's
project, never the repository's Pagila. `dagster dev` shuts its children down slowly on SIGINT
(over 30 s), so it runs in a process group of its own that the first SIGINT/SIGTERM ends: SIGTERM
to the group, SIGKILL to what is left after a grace of a few seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medallion.settings import Settings

DEFINITIONS_MODULE = "medallion.orchestration.definitions"
GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class UiCommand:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    dagster_home: Path
    url: str


def dagster_dev(settings: Settings, host: str = "127.0.0.1", port: int = 3000) -> UiCommand:
    """`dagster dev` (webserver and the daemon that fires schedules) on the pipeline's settings.

    Runs and schedules are kept in DAGSTER_HOME = MEDALLION_HOME/dagster, beside the cluster;
    MEDALLION_HOME and the project file are passed on as absolute paths."""
    dagster_home = settings.home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance = dagster_home / "dagster.yaml"
    if not instance.exists():  # an offline pipeline: Dagster's usage statistics off, said once
        instance.write_text("telemetry:\n  enabled: false\n")
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home), MEDALLION_HOME=str(settings.home),
               MEDALLION_SLOT=settings.slot)
    if settings.config_path:
        env["MEDALLION_CONFIG"] = str(settings.config_path)
    if settings.pagila_dir:
        env["PAGILA_DIR"] = str(settings.pagila_dir)
    executable = Path(sys.executable).parent / "dagster"
    argv = [str(executable) if executable.exists() else "dagster", "dev", "-m", DEFINITIONS_MODULE,
            "-h", host, "-p", str(port)]
    return UiCommand(argv, env, Path.cwd(), dagster_home, f"http://{host}:{port}")


def definitions_problem(settings: Settings) -> str | None:
    """Load the definitions once here, so that an error is printed, not only shown on the page
    (and in Dagster's log). None when they load."""
    try:
        from medallion.orchestration.definitions import build_definitions

        build_definitions(settings)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, the UI still starts and shows it
        return " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the cause's layout
    return None


def serve(command: UiCommand, on_stop: Callable[[str], None]) -> int:
    """Run `dagster dev` until it exits or this process gets SIGINT/SIGTERM; return its exit code
    (0 after a stop asked for by a signal)."""
    child = subprocess.Popen(command.argv, env=command.env, cwd=command.cwd, start_new_session=True)
    stopping: list[str] = []

    def stop(signum: int, _frame: object) -> None:
        if not stopping:
            stopping.append(signal.Signals(signum).name)
            _signal_group(child.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while child.poll() is None and not stopping:
            time.sleep(0.2)
        if stopping:
            on_stop(f"{stopping[0]}: stopping Dagster")
            deadline = time.monotonic() + GRACE_SECONDS
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(child.pid, signal.SIGKILL)  # the webserver, daemon and code servers too
            child.wait()
            return 0
        _signal_group(child.pid, signal.SIGKILL)  # dagster dev gone: no orphan left listening
        return child.returncode
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
