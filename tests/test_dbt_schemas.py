"""dbt's JSON schemas kept on disk (medallion/dbt_schemas.py): a second process reads what the
first derived, the same schemas; a damaged file is derived and written again. Each process is
a real interpreter, as each `medallion run` is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLASSES = ("dbt.contracts.project:Project", "dbt.contracts.graph.nodes:ModelNode",
           "dbt.adapters.postgres.connections:PostgresCredentials")

PROBE = """
import importlib, json, sys
from dbt_common.dataclass_schema import dbtClassMixin
if sys.argv[1] == "refuse":  # any schema not on disk fails this process
    def refuse(cls):
        raise AssertionError(f"derived {cls.__qualname__} again")
    dbtClassMixin.json_schema.__func__.__wrapped__ = refuse
from medallion.dbt_schemas import keep_schemas_on_disk
keep_schemas_on_disk()
found = {}
for name in sys.argv[2:]:
    module, cls = name.split(":")
    found[name] = getattr(importlib.import_module(module), cls).json_schema()
print(json.dumps(found, sort_keys=True))
"""


def probe(cache: Path, mode: str) -> dict:
    env = dict(os.environ, MEDALLION_DBT_SCHEMA_CACHE=str(cache))
    ran = subprocess.run([sys.executable, "-c", PROBE, mode, *CLASSES], env=env, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def test_a_second_process_reads_the_schemas_the_first_derived_and_a_damaged_file_is_written_again(
        tmp_path: Path) -> None:
    derived = probe(tmp_path, "derive")
    assert all(derived[name]["type"] == "object" and derived[name]["properties"] for name in CLASSES)
    [kept] = tmp_path.glob("*.json")
    assert len(json.loads(kept.read_text())) >= len(CLASSES)
    assert probe(tmp_path, "refuse") == derived  # read from disk, not derived: the same schemas

    kept.write_text('{"dbt.contracts.project:Project": ')
    assert probe(tmp_path, "derive") == derived
    assert len(json.loads(kept.read_text())) >= len(CLASSES)
