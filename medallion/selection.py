"""The selection: medallion.toml's include/exclude and table options, resolved against the source.

This is the one place that decides which source tables are captured, under which bronze and
silver names, and with which history key. Ingest, prepare-source, build, status and
`medallion tables` all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medallion import naming
from medallion.config import ProjectConfig, TableOptions
from medallion.errors import SelectionError
from medallion.patterns import display
from medallion.source.catalog import SourceTable

PARTITION_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")


@dataclass(frozen=True)
class CapturedTable:
    table: SourceTable  # the table itself (the root of a partitioned table)
    partitions: tuple[SourceTable, ...]  # its leaf and intermediate partitions, if any
    bronze: str  # bronze table name (without schema)
    silver: str  # silver base name: <silver>_hist, <silver>, <silver>_as_of
    key: tuple[str, ...] | None  # the history key; None when there is none (no history)
    key_origin: str | None  # "primary key", "replica identity index", "declared" (in medallion.toml, not the source's)
    partition_by: str | None

    @property
    def name(self) -> str:
        return display(*self.table.ident)


@dataclass(frozen=True)
class LeftOut:
    name: str
    reason: str


@dataclass
class Selection:
    config: ProjectConfig
    captured: list[CapturedTable] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things to tell, not to stop for

    def by_ident(self) -> dict[tuple[str, str], CapturedTable]:
        return {c.table.ident: c for c in self.captured}


def selects(config: ProjectConfig, schema: str, table: str) -> str | None:
    """Why config leaves schema.table out, or None when it selects it."""
    if not any(p.matches(schema, table) for p in config.include):
        return "not matched by [capture] include"
    for pattern in config.exclude:
        if pattern.matches(schema, table):
            return f"excluded by [capture] exclude {pattern.text!r}"
    return None


def _key(config_path: str, table: SourceTable, options: TableOptions) -> tuple[tuple[str, ...] | None, str | None]:
    columns = {c.name for c in table.columns}
    if options.key is not None:
        missing = [k for k in options.key if k not in columns]
        if missing:
            raise SelectionError(
                f'{config_path}: [tables."{display(*table.ident)}"] key column {missing[0]!r} is not a column of '
                f"{display(*table.ident)} (columns: {', '.join(sorted(columns))})")
        if tuple(options.key) != tuple(table.key or ()):
            return options.key, "declared"  # in medallion.toml, not the source's: the build checks it
    if table.key:
        return table.key, "primary key" if table.has_primary_key else "replica identity index"
    return None, None


def _partition_by(config_path: str, table: SourceTable, options: TableOptions) -> str | None:
    if options.partition_by is None:
        return None
    types = {c.name: c.warehouse_type for c in table.columns}
    where = f'{config_path}: [tables."{display(*table.ident)}"] partition_by'
    if options.partition_by not in types:
        raise SelectionError(f"{where} names {options.partition_by!r}, which is not a column of "
                             f"{display(*table.ident)}")
    if types[options.partition_by] not in PARTITION_TYPES:
        raise SelectionError(f"{where} {options.partition_by!r} is {types[options.partition_by]}: "
                             "months need a date or timestamp column")
    return options.partition_by


def resolve(config: ProjectConfig, tables: list[SourceTable],
            bronze_names: dict[tuple[str, str], str] | None = None) -> Selection:
    """Which of the source's tables are captured, with their names, keys and partitions.

    bronze_names: the bronze tables already recorded for source tables (they keep their name)."""
    bronze_names = dict(bronze_names or {})
    selection = Selection(config)
    by_ident = {t.ident: t for t in tables}
    matched_patterns: set[str] = set()

    for table in tables:
        name = display(*table.ident)
        for pattern in config.include:
            if pattern.matches(*table.ident):
                matched_patterns.add(pattern.text)
        if table.is_partition:
            root = by_ident.get(table.root)
            reason = f"partition of {display(*table.root)}"
            if root is not None and selects(config, *table.root) is None:
                reason += ": captured through its root"
            selection.left_out.append(LeftOut(name, reason))
            continue
        why_not = selects(config, *table.ident)
        if why_not is not None:
            selection.left_out.append(LeftOut(name, why_not))
            continue
        if table.persistence != "p":
            selection.left_out.append(LeftOut(
                name, "unlogged: its changes are not written to the WAL, so they cannot be captured"
                if table.persistence == "u" else "temporary"))
            continue
        options = config.options(*table.ident)
        key, origin = _key(config.where, table, options)
        partitions = tuple(t for t in tables if t.is_partition and t.root == table.ident)
        taken = set(bronze_names.values())
        bronze = bronze_names.get(table.ident) or naming.bronze_table(*table.ident)
        if table.ident not in bronze_names and bronze in taken:
            bronze = naming.fit(f"{bronze}_{naming.short_hash(name)}")
        bronze_names[table.ident] = bronze
        selection.captured.append(CapturedTable(
            table=table, partitions=partitions, bronze=bronze,
            silver=naming.silver_base(*table.ident, options.silver), key=key, key_origin=origin,
            partition_by=_partition_by(config.where, table, options)))

    for pattern in config.include:
        if pattern.text not in matched_patterns:
            selection.notes.append(f"[capture] include {pattern.text!r} matches no table in the source")
    captured = {c.table.ident for c in selection.captured}
    for ident in config.tables:
        if ident not in captured:
            selection.notes.append(f'{config.where}: [tables."{display(*ident)}"] is ignored: '
                                   f"{display(*ident)} is not a captured table of the source")
    seen: dict[str, str] = {}
    for table in selection.captured:
        if table.silver in seen:
            raise SelectionError(
                f"{seen[table.silver]} and {table.name} would both be silver.{table.silver}_hist: set "
                f'silver = "..." under [tables."{table.name}"] in {config.where}')
        seen[table.silver] = table.name
        if table.key is None and table.table.replica_identity == "f":
            # without any identity it is not even published: checks.identity_problem says so
            selection.notes.append(no_key_note(config, table.name))
    return selection


def excluded_note(config: ProjectConfig, name: str, why: str) -> str:
    """What happens to a table bronze holds that the selection no longer selects (said every run)."""
    return (f"{name} is in bronze but {config.where} no longer selects it ({why}): bronze captures no more of it "
            "and silver builds no more of its history (what was built stays); to capture it again, select it and "
            "run 'medallion resync', since its changes meanwhile are not in bronze")


def no_key_note(config: ProjectConfig, name: str) -> str:
    where = config.path.name if config.path else "medallion.toml"
    return (f"{name} has no primary key: bronze captures it (REPLICA IDENTITY FULL) but silver builds no "
            f'history until you set key = ["..."] under [tables."{name}"] in {where}')


def require_some(selection: Selection) -> None:
    """Refuse an empty selection: there would be nothing to capture."""
    if not selection.captured:
        patterns = ", ".join(repr(p.text) for p in selection.config.include)
        raise SelectionError(
            f"no source table matches the selection ({patterns} in {selection.config.where}): "
            "check [capture] include/exclude, or point MEDALLION_SOURCE_DSN at the right database")
