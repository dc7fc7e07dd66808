"""The capture plan: medallion.toml's include/exclude and table options, resolved against the
source's catalog and bronze's record of the tables it holds.

This is the one place that decides which source tables are captured, under which bronze and
silver names, and with which history key and partition column. Ingest (its routing of tables
new to bronze too), prepare-source, grant, build (silver's plan), status, orchestration and
`medallion tables` all read it from here: bronze_name() is the only function that names a
bronze table, history_key(), partition_column() and silver_clash() the only ones that decide a
table's key, partitions and silver name.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import psycopg

from medallion import naming
from medallion.bronze import store
from medallion.bronze.store import RecordedTable
from medallion.config import ProjectConfig, TableOptions
from medallion.errors import SelectionError
from medallion.patterns import display
from medallion.source.catalog import SourceTable, read_tables

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


@dataclass(frozen=True)
class CapturePlan:
    """What every consumer of the capture reads: the selection resolved against the source's
    catalog, with bronze's record of the tables it holds (by bronze table)."""

    selection: Selection
    catalog: list[SourceTable]
    recorded: dict[str, RecordedTable]

    def predicted_records(self) -> dict[str, RecordedTable]:
        """Bronze's record as the first ingest will write it (for a build planned before it)."""
        return {t.bronze: recorded_from(t.bronze, t.table) for t in self.selection.captured}


def read_plan(config: ProjectConfig, src: psycopg.Connection, wh: psycopg.Connection | None = None) -> CapturePlan:
    """The capture plan now: the source's catalog, and bronze's record when a warehouse is given
    (tables bronze has captured keep their recorded bronze names)."""
    recorded = store.recorded_tables(wh) if wh is not None else {}
    if wh is not None:
        wh.commit()
    catalog = read_tables(src)
    return CapturePlan(resolve(config, catalog, bronze_names(recorded)), catalog, recorded)


def bronze_names(recorded: dict[str, RecordedTable]) -> dict[tuple[str, str], str]:
    """(schema, table) -> the bronze table bronze recorded it under."""
    return {t.ident: t.bronze for t in recorded.values()}


def recorded_from(bronze: str, table: SourceTable) -> RecordedTable:
    """A source table as bronze records it, before the record is written."""
    return RecordedTable(bronze=bronze, schema=table.schema, name=table.name, qualified=table.qualified,
                         commit_lsn=0, columns=table.columns, key=table.key,
                         replica_identity=table.replica_identity, relid=table.oid)


def bronze_name(ident: tuple[str, str], taken: Collection[str]) -> str:
    """The bronze table of a source table new to bronze: br_<stem>_cdc, or, when another table
    already has that name, the same with a hash of the table's displayed name.

    The only place a bronze table is named: the snapshot, `tables`, silver and the tables the
    stream finds later all agree, also for names that need quoting."""
    bronze = naming.bronze_table(*ident)
    if bronze in taken:
        bronze = naming.fit(f"{bronze}_{naming.short_hash(display(*ident))}")
    return bronze


def history_key(config_path: str, table: SourceTable,
                options: TableOptions) -> tuple[tuple[str, ...] | None, str | None]:
    """(the history key, where it comes from): medallion.toml's key when it names other columns
    than the source's ("declared"), else the primary key or replica identity index; (None, None)
    when there is none. A declared column the table lacks is a SelectionError."""
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


def partition_column(config_path: str, table: SourceTable, options: TableOptions) -> str | None:
    """medallion.toml's partition_by for the table, checked: a date or timestamp column of it
    (a SelectionError otherwise), or None when none is set."""
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
        key, origin = history_key(config.where, table, options)
        partitions = tuple(t for t in tables if t.is_partition and t.root == table.ident)
        bronze = bronze_names.get(table.ident) or bronze_name(table.ident, set(bronze_names.values()))
        bronze_names[table.ident] = bronze
        selection.captured.append(CapturedTable(
            table=table, partitions=partitions, bronze=bronze,
            silver=naming.silver_base(*table.ident, options.silver), key=key, key_origin=origin,
            partition_by=partition_column(config.where, table, options)))

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
        clash = silver_clash(config, seen, table.silver, table.name)
        if clash is not None:
            raise SelectionError(clash)
        if table.key is None and table.table.replica_identity == "f":
            # without any identity it is not even published: checks.identity_problem says so
            selection.notes.append(no_key_note(config, table.name))
    return selection


def silver_clash(config: ProjectConfig, seen: dict[str, str], base: str, name: str) -> str | None:
    """Why table name cannot have silver base name base, which seen (base -> table) already holds,
    or None (then it is added to seen)."""
    if base in seen:
        return (f"{seen[base]} and {name} would both be silver.{base}_hist: set "
                f'silver = "..." under [tables."{name}"] in {config.where}')
    seen[base] = name
    return None


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
