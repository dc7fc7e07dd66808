"""The project file, medallion.toml: which tables are captured and what silver calls them.

    [capture]
    include = ["public.*"]          # schema.table globs (the default when absent)
    exclude = []
    accept_no_ddl_trigger = true    # without a superuser: stop saying that schema changes are dated late
    [tables."public.customer"]
    silver = "dim_customer"         # silver.dim_customer_hist, silver.dim_customer, silver.dim_customer_as_of(ts)
    key = ["customer_id"]           # the history key; needed only for a table without a primary key
    partition_by = "created_at"     # silver.<name> as a month-partitioned current-state table, not a view
    column_types = { rate = "numeric" }   # a history column's type, when a type change does not widen
    column_names = { sys_start = "source_sys_start" }  # a source column's name in silver (one silver uses)
    [transform]
    dbt_project = "transform"       # the project's own dbt models (gold, curated silver)
    [lake]                          # bronze exported to Apache Iceberg, silver and gold on Spark
    warehouse = "s3://bucket/lake"  # data files: a folder or any fsspec/S3 URI; default MEDALLION_HOME/lake
    catalog_uri = "postgresql+psycopg2://..."  # the Iceberg SQL catalog; default the warehouse PostgreSQL
    catalog_name = "medallion"      # the catalog's name in that database (several lakes can share one)
    spark_profiles_dir = "spark"    # a dbt profiles.yml for a real Spark (thrift, Spark Connect); default local
    [status]                        # when `medallion status` says capture is at risk (exit code 1)
    max_lag_bytes = "1GB"           # source WAL written since the slot's confirmed position
    max_retained_wal_bytes = "4GB"  # source WAL kept for the slot (from its restart_lsn): the source's disk
    [metrics]                       # Prometheus /metrics of `run --follow` and `ingest --follow`
    port = 9187                     # off when absent (or --metrics-port N)
    address = "127.0.0.1"           # where it listens; "0.0.0.0" for every interface

It is found in MEDALLION_CONFIG, else ./medallion.toml; without one the defaults above hold and
there is no project dbt (bronze and silver only). Read with the standard library (tomllib).
Every problem is one ConfigError line that names the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medallion.errors import ConfigError
from medallion.patterns import TablePattern, parse_qualified_name

CONFIG_FILE = "medallion.toml"
DEFAULT_INCLUDE = ("public.*",)
PLUGINS = ("pgoutput", "wal2json")

_SECTIONS = {"capture", "tables", "transform", "lake", "status", "metrics"}
_CAPTURE_KEYS = {"include", "exclude", "plugin", "accept_no_ddl_trigger", "replica_identity"}
# prepare-source: "key" leaves a table with a primary key (or identity index) as it is and sets
# FULL only on a keyless table; "full" sets FULL on every captured table
REPLICA_IDENTITIES = ("key", "full")
_TABLE_KEYS = {"silver", "key", "partition_by", "column_types", "column_names"}
_TRANSFORM_KEYS = {"dbt_project"}
_LAKE_KEYS = {"warehouse", "catalog_uri", "catalog_name", "spark_profiles_dir"}
_STATUS_KEYS = {"max_lag_bytes", "max_retained_wal_bytes"}
_METRICS_KEYS = {"port", "address"}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|kB|KB|MB|GB|TB)?\s*$")
_UNITS = {None: 1, "B": 1, "kB": 2**10, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}


@dataclass(frozen=True)
class TableOptions:
    """Per-table settings of [tables."schema.table"]; None means the default."""

    silver: str | None = None
    key: tuple[str, ...] | None = None
    partition_by: str | None = None
    column_types: dict[str, str] = field(default_factory=dict)  # history column -> type that holds every value
    column_names: dict[str, str] = field(default_factory=dict)  # source column -> its name in silver


@dataclass(frozen=True)
class LakeConfig:
    """[lake]: where bronze is exported as Iceberg tables and where Spark finds them.

    None values mean the defaults, resolved where the environment is known (medallion/lake/target.py):
    the warehouse PostgreSQL holds the catalog, MEDALLION_HOME/lake the data files, and Spark runs
    in-process. Its presence alone turns the export on in `medallion run`."""

    warehouse: str | None = None
    catalog_uri: str | None = None
    catalog_name: str = "medallion"
    spark_profiles_dir: Path | None = None


@dataclass(frozen=True)
class StatusThresholds:
    """[status]: past these, `medallion status` says capture is at risk and exits 1.

    Lag is the source's WAL since the slot's confirmed position (what bronze has yet to read);
    retained WAL is what the source keeps for the slot (from its restart_lsn), which a stopped
    pipeline lets grow until the source's disk is full (max_slot_wal_keep_size is -1 by default)."""

    max_lag_bytes: int = 2**30
    max_retained_wal_bytes: int = 4 * 2**30


@dataclass(frozen=True)
class MetricsConfig:
    """[metrics]: the Prometheus endpoint of the long-running processes (medallion/metrics.py).

    No port, no endpoint. It listens on the loopback unless told otherwise: the numbers name
    tables and slots, which are not for every network to read."""

    port: int | None = None
    address: str = "127.0.0.1"


@dataclass(frozen=True)
class ProjectConfig:
    include: tuple[TablePattern, ...] = tuple(TablePattern.parse(p) for p in DEFAULT_INCLUDE)
    exclude: tuple[TablePattern, ...] = ()
    tables: dict[tuple[str, str], TableOptions] = field(default_factory=dict)
    dbt_project: Path | None = None
    plugin: str | None = None
    replica_identity: str = "key"  # what prepare-source sets (REPLICA_IDENTITIES)
    path: Path | None = None  # where it was read from; None for the defaults
    lake: LakeConfig | None = None  # [lake]; None: no Iceberg export, no Spark engine
    # [capture] accept_no_ddl_trigger: the user knows that without the source's DDL trigger (it
    # needs a superuser) a schema change is dated at the table's next change; the notes saying so
    # (prepare-source, ingest) are then left out. What is recorded is the same either way.
    accept_no_ddl_trigger: bool = False
    status: StatusThresholds = field(default_factory=StatusThresholds)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    @property
    def where(self) -> str:
        return str(self.path) if self.path else "the default selection (no medallion.toml)"

    def options(self, schema: str, table: str) -> TableOptions:
        return self.tables.get((schema, table), TableOptions())


def _unknown(keys: set[str], allowed: set[str], where: str, path: Path) -> None:
    for key in sorted(keys - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(allowed))})"
        raise ConfigError(f"{path}: unknown key {key!r} in {where}{hint}")


def _string_list(value: Any, where: str, path: Path) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f'{path}: {where} must be a list of strings, e.g. ["public.*"]')
    return value


def _patterns(value: Any, where: str, path: Path) -> tuple[TablePattern, ...]:
    patterns = []
    for text in _string_list(value, where, path):
        try:
            patterns.append(TablePattern.parse(text))
        except ValueError as exc:
            raise ConfigError(f"{path}: {where}: {exc}") from None
    return tuple(patterns)


def _table_options(name: str, raw: Any, path: Path) -> tuple[tuple[str, str], TableOptions]:
    where = f'[tables."{name}"]'
    try:
        qualified = parse_qualified_name(name)
    except ValueError as exc:
        raise ConfigError(f"{path}: {where}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {where} must be a table of options (silver, key, partition_by)")
    _unknown(set(raw), _TABLE_KEYS, where, path)
    silver = raw.get("silver")
    if silver is not None and (not isinstance(silver, str) or not silver.strip()):
        raise ConfigError(f'{path}: {where} silver must be a non-empty name, e.g. silver = "dim_customer"')
    key = raw.get("key")
    key_columns = tuple(_string_list(key, f"{where} key", path)) if key is not None else None
    partition_by = raw.get("partition_by")
    if partition_by is not None and (not isinstance(partition_by, str) or not partition_by):
        raise ConfigError(f'{path}: {where} partition_by must be a column name, e.g. partition_by = "created_at"')
    column_types = raw.get("column_types", {})
    if not isinstance(column_types, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                      for k, v in column_types.items()):
        raise ConfigError(f'{path}: {where} column_types must map columns to types, e.g. '
                          'column_types = { rental_rate = "numeric" }')
    column_names = raw.get("column_names", {})
    if not isinstance(column_names, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                      for k, v in column_names.items()) \
            or len(set(column_names.values())) != len(column_names):
        raise ConfigError(f'{path}: {where} column_names must map source columns to distinct silver names, e.g. '
                          'column_names = { sys_start = "source_sys_start" }')
    return qualified, TableOptions(silver=silver, key=key_columns, partition_by=partition_by,
                                   column_types=dict(column_types), column_names=dict(column_names))


def _section(raw: Any, name: str, keys: set[str], path: Path) -> dict | None:
    """An optional [name] table of known keys, or None when the file has none."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    _unknown(set(raw), keys, f"[{name}]", path)
    return raw


def _lake(raw: Any, path: Path) -> LakeConfig | None:
    if (raw := _section(raw, "lake", _LAKE_KEYS, path)) is None:
        return None
    for key in _LAKE_KEYS:
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise ConfigError(f'{path}: [lake] {key} must be a non-empty string, e.g. {key} = "..."')
    warehouse = raw.get("warehouse")
    if warehouse is not None and "://" not in warehouse:
        warehouse = str((path.parent / warehouse).resolve())  # a folder, relative to the file
    profiles = raw.get("spark_profiles_dir")
    profiles_dir = (path.parent / profiles).resolve() if profiles else None
    if profiles_dir is not None and not (profiles_dir / "profiles.yml").is_file():
        raise ConfigError(f"{path}: [lake] spark_profiles_dir = {profiles!r}: {profiles_dir} has no profiles.yml")
    return LakeConfig(warehouse=warehouse, catalog_uri=raw.get("catalog_uri"),
                      catalog_name=raw.get("catalog_name", "medallion"), spark_profiles_dir=profiles_dir)


def _size(value: Any, where: str, path: Path) -> int:
    match = _SIZE.match(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if match and int(match.group(1)) > 0:
        return int(match.group(1)) * _UNITS[match.group(2)]
    raise ConfigError(f'{path}: {where} must be a positive size in bytes, e.g. 1073741824 or "1GB"')


def _status(raw: Any, path: Path) -> StatusThresholds:
    if (raw := _section(raw, "status", _STATUS_KEYS, path)) is None:
        return StatusThresholds()
    defaults = StatusThresholds()
    return StatusThresholds(**{key: _size(raw[key], f"[status] {key}", path) if key in raw else getattr(defaults, key)
                               for key in sorted(_STATUS_KEYS)})


def _metrics(raw: Any, path: Path) -> MetricsConfig:
    if (raw := _section(raw, "metrics", _METRICS_KEYS, path)) is None:
        return MetricsConfig()
    port = raw.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535):
        raise ConfigError(f"{path}: [metrics] port must be a TCP port (1-65535), e.g. port = 9187")
    address = raw.get("address", "127.0.0.1")
    if not isinstance(address, str) or not address.strip():
        raise ConfigError(f'{path}: [metrics] address must be an address to listen on, e.g. address = "127.0.0.1"')
    return MetricsConfig(port=port, address=address.strip())


def parse_config(text: str, path: Path) -> ProjectConfig:
    """A ProjectConfig from the text of a medallion.toml (path is for messages and relative paths)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    _unknown(set(raw), _SECTIONS, "the file", path)
    capture = raw.get("capture", {})
    tables = raw.get("tables", {})
    transform = raw.get("transform", {})
    for section, value in (("capture", capture), ("tables", tables), ("transform", transform)):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
    _unknown(set(capture), _CAPTURE_KEYS, "[capture]", path)
    _unknown(set(transform), _TRANSFORM_KEYS, "[transform]", path)

    include = _patterns(capture.get("include", list(DEFAULT_INCLUDE)), "[capture] include", path)
    if not include:
        raise ConfigError(f'{path}: [capture] include is empty: nothing would be captured; e.g. include = ["public.*"]')
    plugin = capture.get("plugin")
    if plugin is not None and plugin not in PLUGINS:
        raise ConfigError(f"{path}: [capture] plugin must be one of {', '.join(PLUGINS)}, not {plugin!r}")
    identity = capture.get("replica_identity", "key")
    if identity not in REPLICA_IDENTITIES:
        raise ConfigError(f"{path}: [capture] replica_identity must be one of {', '.join(REPLICA_IDENTITIES)}, "
                          f"not {identity!r}")

    accept = capture.get("accept_no_ddl_trigger", False)
    if not isinstance(accept, bool):
        raise ConfigError(f"{path}: [capture] accept_no_ddl_trigger must be true or false, not {accept!r}")

    dbt_project = None
    if "dbt_project" in transform:
        value = transform["dbt_project"]
        if not isinstance(value, str) or not value:
            raise ConfigError(f'{path}: [transform] dbt_project must be a folder, e.g. dbt_project = "transform"')
        dbt_project = (path.parent / value).resolve()
        if not (dbt_project / "dbt_project.yml").is_file():
            raise ConfigError(f"{path}: [transform] dbt_project = {value!r}: {dbt_project} has no dbt_project.yml")

    return ProjectConfig(
        include=include,
        exclude=_patterns(capture.get("exclude", []), "[capture] exclude", path),
        tables=dict(_table_options(name, options, path) for name, options in tables.items()),
        dbt_project=dbt_project,
        plugin=plugin,
        accept_no_ddl_trigger=accept,
        replica_identity=identity,
        path=path,
        lake=_lake(raw.get("lake"), path),
        status=_status(raw.get("status"), path),
        metrics=_metrics(raw.get("metrics"), path),
    )


def load_config(path: Path | None) -> ProjectConfig:
    """The project file at path, or the defaults when path is None."""
    if path is None:
        return ProjectConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: fix MEDALLION_CONFIG, or unset it to use ./{CONFIG_FILE}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse_config(text, path)
