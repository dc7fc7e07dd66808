"""dbt's JSON schemas, kept on disk between processes.

dbt validates its project, profile, every node and every config against a JSON schema that
mashumaro derives from the dataclass, once per class and process (dbt_common's
dbtClassMixin.json_schema, an lru_cache). That derivation took 2-2.5 s of CPU of each 8-10 s
`medallion run` that starts dbt, every time, for the same classes. The schema is a pure function
of the class, so it is kept in one JSON file per set of installed versions (dbt-core,
dbt-common, the adapters, mashumaro), each entry keyed by the class's module, name and fields.
An unreadable file is ignored and written again; a cache that cannot be written only costs
time. Validation itself is unchanged: dbt still checks every document against the schema.

Kept in $MEDALLION_DBT_SCHEMA_CACHE, else $XDG_CACHE_HOME/medallion/dbt-schemas (~/.cache/...).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from medallion.user_cache import store_json, user_cache

PACKAGES = ("dbt-core", "dbt-common", "dbt-adapters", "dbt-postgres", "dbt-spark", "mashumaro")


def cache_file() -> Path:
    from importlib import metadata

    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} absent")
    name = hashlib.sha256(" ".join(versions).encode()).hexdigest()[:16]
    return user_cache("dbt-schemas", "MEDALLION_DBT_SCHEMA_CACHE") / f"{name}.json"


def _key(cls: type) -> str:
    shape = [(f.name, str(f.type)) for f in fields(cls)] if is_dataclass(cls) else []
    return f"{cls.__module__}:{cls.__qualname__}:{hashlib.sha256(repr(shape).encode()).hexdigest()[:16]}"


def keep_schemas_on_disk() -> None:
    """Make dbtClassMixin.json_schema read the schemas on disk first; idempotent."""
    from dbt_common.dataclass_schema import dbtClassMixin

    if getattr(dbtClassMixin, "_medallion_schemas_on_disk", False):
        return
    derive = dbtClassMixin.json_schema.__func__.__wrapped__  # under dbt_common's lru_cache
    path = cache_file()
    try:
        known: dict[str, Any] = json.loads(path.read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    learned: dict[str, Any] = {}

    @functools.lru_cache
    def json_schema(cls: type) -> dict[str, Any]:
        key = _key(cls)
        found = known.get(key)
        if not isinstance(found, dict):
            found = learned[key] = derive(cls)
        return found

    def save() -> None:
        if learned:
            store_json(path, {**known, **learned})

    dbtClassMixin.json_schema = classmethod(json_schema)  # type: ignore[method-assign]
    dbtClassMixin._medallion_schemas_on_disk = True  # type: ignore[attr-defined]
    atexit.register(save)
