"""The .sql files shipped in the packages' sql/ folders, read by name (SQL lives in .sql files).

A leaf: it imports nothing of medallion, so any module may read its SQL without pulling in
connections or the embedded cluster (db.py reading them once closed an import circle:
access/roles.py -> db.py -> source/cluster.py -> access/roles.py).
"""

from __future__ import annotations

import re
from importlib.resources import files


def sql_text(package: str, name: str) -> str:
    """The text of a .sql file shipped in a package's sql/ folder."""
    return files(package).joinpath("sql", name).read_text(encoding="utf-8")


def named_sql(package: str, name: str) -> dict[str, str]:
    """The '-- name: X' sections of a .sql file, in file order (one statement each)."""
    parts = re.split(r"^-- name: (.+)\n", sql_text(package, name), flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip().rstrip(";") for i in range(1, len(parts), 2)}
