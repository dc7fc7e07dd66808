"""A warm `medallion` command for the tests: one process per test worker that has imported
medallion and dbt once, and forks a child for every command (tests/support.py's run_command).

Why: the suite runs a few hundred commands, and each cold `python -m medallion.cli` paid for
its imports again: about 0.6 s of CPU for medallion, 3.8 s more when the command starts dbt, on
a 2-core machine where CPU is what the suite waits for. A forked child is a fresh process with
those modules already loaded: its own pid, environment, working directory, standard streams and
exit code, as a cold one has; nothing one command does is seen by the next (each child starts
from the same untouched parent). The parent has no thread and no connection when it forks.

Protocol, one JSON line each way: {"args", "env", "cwd", "stdout", "stderr"} in; {"pid"} once
the child runs, then {"code"} when it has ended. MEDALLION_TEST_COLD_CLI=1 in the tests'
environment skips all this (support.run_command starts `python -m medallion.cli` itself).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import threading
import traceback

# what a command imports on its way; dbt's modules only when it starts dbt (most of the cost)
import medallion.cli
import medallion.dbt_run  # noqa: F401
import medallion.stored_build  # noqa: F401
from dbt.cli.main import dbtRunner  # noqa: F401
import dbt.adapters.postgres  # noqa: F401


def _child(request: dict, channel: list[int]) -> None:
    """In the forked child: become the command the request describes, run it, exit with its code."""
    for fd in channel:
        os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, fd)
        os.close(out)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["medallion", *request["args"]]
    sys.path[0] = request["cwd"]  # as `python -m` from that folder
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code: int
    try:
        medallion.cli.cli.main(args=request["args"], prog_name="medallion")
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # what a cold interpreter prints for an uncaught exception
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()  # what a cold process runs at exit (e.g. the dbt schema cache)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(requests: int, replies: int) -> None:
    """Fork a child per request line until the requests end (the test worker exits)."""
    assert threading.active_count() == 1, "a process with threads must not fork"
    reader = os.fdopen(requests, "r", encoding="utf-8")
    writer = os.fdopen(replies, "w", encoding="utf-8")
    for line in reader:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, [requests, replies])
        writer.write(json.dumps({"pid": pid}) + "\n")
        writer.flush()
        _, status = os.waitpid(pid, 0)
        writer.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
        writer.flush()


if __name__ == "__main__":
    # the requests and replies on descriptors of their own, so no command's output can reach them
    channel = os.dup(0), os.dup(1)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    serve(*channel)
