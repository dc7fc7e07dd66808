"""The lake's optional packages: a missing one is one line naming the install, not a traceback."""

from __future__ import annotations

import importlib.util

from medallion.errors import LakeUnavailable

_PACKAGES = {"pyiceberg": "pyiceberg", "adbc_driver_postgresql": "adbc-driver-postgresql", "pyspark": "pyspark",
             "snowpark_connect_deps_iceberg": "snowpark-connect-deps-iceberg", "dbt.adapters.spark": "dbt-spark"}


def require(*modules: str) -> None:
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise LakeUnavailable(f"{_PACKAGES.get(module, module)} is not installed: run 'make setup' "
                                  "(or pip install -c constraints.txt -e '.[lake]')")
