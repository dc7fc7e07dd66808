"""Failures medallion has no name for: the traceback goes to a log file, the user gets one line.

A traceback on a terminal tells an operator nothing they can act on (and may show a DSN). The
log file under MEDALLION_HOME keeps it for a bug report: passwords redacted, readable by its
owner only, appended so that earlier failures stay.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import traceback
from pathlib import Path

from medallion.db import connection_reason, redact

LOG_NAME = "errors.log"


def home() -> Path:
    """MEDALLION_HOME as settings would resolve it, without reading anything that could fail."""
    return Path(os.environ.get("MEDALLION_HOME") or Path.cwd() / ".medallion")


def write_traceback(exc: BaseException, folder: Path | None = None) -> Path:
    """Append exc's traceback, with the command line and time, to MEDALLION_HOME/errors.log.

    When MEDALLION_HOME cannot be written (a read-only folder, say), a private temporary file
    takes it: the one line must still name a file that exists."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    entry = (f"--- {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} "
             f"{redact(' '.join(sys.argv))}\n{redact(text)}\n")
    path = (folder or home()) / LOG_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        fd, name = tempfile.mkstemp(prefix="medallion-error-", suffix=".log")
        path = Path(name)
    with os.fdopen(fd, "a", encoding="utf-8") as log:
        log.write(entry)
    return path


def describe(exc: BaseException, log: Path) -> str:
    """One line for a failure without a name of its own: what PostgreSQL said (when it was
    PostgreSQL), else the exception's type and first line; always the log file that has the rest."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) or getattr(exc, "pgerror", None)
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    first = (str(primary or exc).strip().splitlines() or [type(exc).__name__])[0]
    # psycopg's or psycopg2's OperationalError without a code (the link broke) or with a connection
    # code (class 08; 57P01-57P03: the server shut down or is starting); other codes are refusals
    broken = not code or str(code).startswith("08") or str(code) in ("57P01", "57P02", "57P03")
    if broken and any(kind.__name__ == "OperationalError" for kind in type(exc).__mro__):
        return redact(f"the connection to PostgreSQL failed: {connection_reason(exc)}; check that the server is running "
                      f"('medallion up' for the embedded one) and run the command again; the traceback is in {log}")
    if primary or code:
        what = f"PostgreSQL refused a statement: {first}" + (f" (SQLSTATE {code})" if code else "")
        return redact(f"{what}; the traceback is in {log}")
    return redact(f"unexpected {type(exc).__name__}: {first}; the traceback is in {log} (please report it)")
