"""The engine is a dbt package (medallion/dbt/dbt_project.yml): its macros call one another
through the package (`medallion.x()`), or dbt cannot find them where medallion is a package of
your own project (a bare name resolves in the rendered node's package, then the root)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_the_engine_is_a_package_whose_macros_call_each_other_by_namespace() -> None:
    package = yaml.safe_load((ROOT / "medallion" / "dbt" / "dbt_project.yml").read_text(encoding="utf-8"))
    assert package["name"] == "medallion" and package["macro-paths"] == ["macros"]
    checked = subprocess.run([sys.executable, str(ROOT / "scripts" / "namespace_macros.py"), "--check"],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout
