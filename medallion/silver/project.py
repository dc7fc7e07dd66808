"""The dbt project medallion builds: silver generated from bronze, the project's own dbt beside it.

No silver model is written by hand. For every table bronze has captured, this module writes
tiny dbt models into MEDALLION_HOME/dbt/silver/ (the history, its current rows, the bronze
source), a dbt package of its own (medallion_silver), whose configuration comes from
medallion.toml and bronze's record of the table (bronze.table_schema); the models' SQL is one
engine macro each (medallion/dbt/macros, the dbt package `medallion`), and the columns and types
are read from bronze when they run.

`medallion build` runs dbt on MEDALLION_HOME/dbt/project/, named medallion, whose macros are the
engine's and whose models/ links to the silver package's; the project's own dbt project
(medallion.toml [transform] dbt_project, e.g. Pagila's gold marts in transform/) is installed
as a local dbt package, so its models ref() the generated ones and use the engine's macros.
`medallion dbt-setup` installs both packages into that project instead, for dbt's own commands
run there (medallion/dbt_setup.py).

    MEDALLION_HOME/dbt/silver/      (package medallion_silver)
        dbt_project.yml
        models/bronze/_bronze__sources.yml
        models/silver/<base>_hist.sql, <base>.sql, _silver__models.yml
    MEDALLION_HOME/dbt/project/
        dbt_project.yml         name: medallion; macro-paths: the engine's macros
        models -> ../silver/models
        packages.yml            the project's own dbt project, when configured
        profiles.yml            the warehouse, from MEDALLION_DBT_* (medallion/transform.py)

The Spark engine builds the very same models from the lake's bronze (engine="spark"):
MEDALLION_HOME/dbt/spark/project/, with dbt-spark's profile, Iceberg as the file format and
the spark materializations that dbt picks for the spark adapter.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from medallion import naming
from medallion.bronze.store import RecordedTable
from medallion.config import ProjectConfig
from medallion.engines import POSTGRES, Engine
from medallion.patterns import display
from medallion.errors import SelectionError
from medallion.selection import excluded_note, history_key, no_key_note, partition_column, selects, silver_clash

ENGINE_DIR = Path(__file__).resolve().parents[1] / "dbt"
ENGINE_PACKAGE = yaml.safe_load((ENGINE_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
PROJECT_NAME = "medallion"

HISTORY_RULES = (
    "One version per committed source transaction that changed the key, in commit order (commit_lsn, "
    "ordinal); several changes to one key in one transaction collapse to the last. sys_start is the "
    "source commit time of the change (the snapshot time for rows of the initial snapshot); sys_end the "
    "next version's sys_start, the commit time of the delete or truncate that ended it, or 'infinity' "
    "while current. Enforced: primary key (key, sys_start), sys_start < sys_end, one current row per "
    "key, no overlapping periods.")


# the columns silver adds to a history and to a current-state table (partition_by), and the prefix
# of the names the engine's macros give their own columns (cdc_feed.sql): a source column may take
# any other name (n, op, lsn, commit_ts, ...); one of these would collide in silver's tables
HISTORY_COLUMNS = ("sys_start", "sys_end", "sys_known_from", "sys_known_to")
CURRENT_STATE_COLUMNS = ("last_commit_ts", "source_table")
ENGINE_PREFIX = "_m_"


def colliding_column(columns: list[str], partitioned: bool) -> str | None:
    """The first column (by its silver name) that silver's own columns take, or that two take."""
    taken = HISTORY_COLUMNS + (CURRENT_STATE_COLUMNS if partitioned else ())
    return next((c for i, c in enumerate(columns)
                 if c in taken or c.startswith(ENGINE_PREFIX) or c in columns[:i]), None)


def _collision_note(config: ProjectConfig, name: str, column: str, partitioned: bool) -> str:
    own = HISTORY_COLUMNS + (CURRENT_STATE_COLUMNS if partitioned else ())
    return (f"{name} has a column named {column!r}, which silver uses for itself ({', '.join(own)}, names "
            f"starting {ENGINE_PREFIX}) or for another column: no history is built for it until you set "
            f'column_names = {{ {column} = "source_{column}" }} (its name in silver) under [tables."{name}"] '
            f"in {config.where}")


@dataclass(frozen=True)
class SilverTable:
    """The silver side of one captured table with a key."""

    table: RecordedTable
    source_name: str  # the dbt source table (bronze) name
    base: str  # silver.<base>_hist, silver.<base>, silver.<base>_as_of
    key: tuple[str, ...]
    partition_by: str | None
    history_model: str
    current_model: str
    column_types: dict[str, str]
    declared_key: bool = False  # medallion.toml's key, not the source's: checked by the build
    column_names: dict[str, str] = field(default_factory=dict)  # source column -> its name in silver

    def silver_column(self, name: str) -> str:
        return self.column_names.get(name, name)

    @property
    def history(self) -> str:
        return f"{self.base}_hist"


@dataclass
class BuildProject:
    path: Path
    silver: list[SilverTable] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # dbt source name -> bronze table
    notes: list[str] = field(default_factory=list)
    dbt_project: Path | None = None
    silver_path: Path | None = None  # the package medallion_silver: silver's generated models

    @property
    def models(self) -> Path:
        """The generated models (bronze's sources, silver's models), which the build project reads
        through its models/ link."""
        return (self.silver_path or self.path) / "models"


def _source_name(bronze: str, taken: set[str]) -> str:
    name = naming.model_name(bronze, taken)
    taken.add(name)
    return name


def plan(config: ProjectConfig, recorded: dict[str, RecordedTable]) -> tuple[list[SilverTable], dict[str, str],
                                                                          list[str]]:
    """What silver holds for what bronze has: (histories, dbt sources, notes)."""
    notes: list[str] = []
    taken: set[str] = set()
    sources: dict[str, str] = {}
    silver: list[SilverTable] = []
    bases: dict[str, str] = {}
    for bronze in sorted(recorded):
        table = recorded[bronze]
        name = display(*table.ident)
        source = _source_name(bronze, taken)
        sources[source] = bronze
        why = selects(config, *table.ident)
        if why is not None:
            notes.append(excluded_note(config, name, why))
            continue
        options = config.options(*table.ident)
        columns = {c.name: c.warehouse_type for c in table.columns}
        try:  # decided by the capture plan (medallion.selection); here a note, not a refusal
            key, origin = history_key(config.where, table.as_source_table(), options)
        except SelectionError as exc:
            notes.append(f"{exc}: no history is built for it")
            continue
        if key is None:
            notes.append(no_key_note(config, name))
            continue
        base = naming.silver_base(*table.ident, options.silver)
        try:
            partition_by = partition_column(config.where, table.as_source_table(), options)
        except SelectionError as exc:
            notes.append(f"{exc}: silver.{base} is a view instead")
            partition_by = None
        renames = {c: s for c, s in options.column_names.items() if c in columns and c != s}
        silver_columns = [renames.get(c, c) for c in columns]
        clash = colliding_column(silver_columns, partition_by is not None)
        if clash is not None:
            notes.append(_collision_note(config, name, clash, partition_by is not None))
            continue
        key = [renames.get(k, k) for k in key]
        partition_by = renames.get(partition_by, partition_by) if partition_by else None
        clash = silver_clash(config, bases, base, name)
        if clash is not None:
            notes.append(f"{clash}; {name} has no history until then")
            continue
        history_model = naming.model_name(f"{base}_hist", taken)
        taken.add(history_model)
        current_model = naming.model_name(base, taken)
        taken.add(current_model)
        silver.append(SilverTable(table, source, base, tuple(key), partition_by, history_model, current_model,
                                  options.column_types, declared_key=origin == "declared",
                                  column_names=renames))
    recorded_idents = {t.ident for t in recorded.values()}
    for ident in config.tables:
        if ident not in recorded_idents:
            notes.append(f'{config.where}: [tables."{display(*ident)}"] is ignored: bronze has not captured '
                         f"{display(*ident)}")
    return silver, sources, notes


def _dbt_project_yml(engine: Engine = POSTGRES) -> dict:
    return engine.project_yml({
        "name": PROJECT_NAME,
        "version": "1.0.0",
        "config-version": 2,
        "profile": PROJECT_NAME,
        "require-dbt-version": [">=1.11.0", "<1.12.0"],
        "model-paths": ["models"],  # a link to silver's package's models (SILVER_PACKAGE)
        "macro-paths": [str(ENGINE_DIR / "macros")],
        "clean-targets": ["target", "dbt_packages"],
        # the engine package's hooks (medallion/dbt/dbt_project.yml), this project being the engine's
        **{hook: ENGINE_PACKAGE[hook] for hook in ("on-run-start", "on-run-end")},
        "models": {PROJECT_NAME: {"silver": {"+schema": "silver"}}},
        "flags": {"send_anonymous_usage_stats": False, "partial_parse": True},
    }, PROJECT_NAME)


SILVER_PACKAGE = "medallion_silver"


def _silver_package_yml() -> dict:
    """The generated models as a package of your own dbt project (`medallion dbt-setup`)."""
    return {"name": SILVER_PACKAGE, "version": "1.0.0", "config-version": 2,
            "require-dbt-version": [">=1.11.0", "<1.12.0"], "model-paths": ["models"],
            "macro-paths": [], "seed-paths": [], "test-paths": [], "analysis-paths": [], "snapshot-paths": [],
            "models": {SILVER_PACKAGE: {"silver": {"+schema": "silver"}}}}


def _sources_yml(recorded: dict[str, RecordedTable], sources: dict[str, str], engine: Engine = POSTGRES) -> dict:
    tables = []
    for source, bronze in sources.items():
        table = recorded[bronze]
        entry = {"name": source, "description": f"Every committed change to {table.qualified}, exactly once."}
        if source != bronze:
            entry["identifier"] = bronze
        tables.append(entry)
    quoting = engine.source_quoting()
    return {"version": 2, "sources": [{
        "name": "bronze", "schema": "bronze", **quoting,
        "description": ("Every committed source change exactly once, in commit order: commit_lsn (commit "
                        "position), ordinal (position in the transaction), op (R snapshot, I, U, D, T "
                        "truncate), full_row (jsonb), old_row (U only), source_table (the relation changed, "
                        "a leaf partition maybe), commit_ts (source commit time; the snapshot time for R rows)."),
        "tables": tables}]}


def _model_yml(silver: SilverTable, engine: Engine = POSTGRES) -> list[dict]:
    table = silver.table
    key = list(silver.key)
    prefix = naming.object_prefix(silver.history)
    history = {
        "name": silver.history_model,
        "description": (f"One row per version of {table.qualified}: grain ({', '.join(key)}, sys_start). "
                        f"As of: silver.{silver.base}_as_of(ts timestamptz)."),
        "config": {"materialized": "system_versioned", "key": key, "source_table": table.qualified,
                   "as_of": f"{silver.base}_as_of", "object_prefix": prefix,
                   "column_types": dict(silver.column_types), "persist_docs": {"relation": True},
                   **({"declared_key": True} if silver.declared_key else {}),
                   **({"column_names": dict(silver.column_names)} if silver.column_names else {})},
        "columns": [{"name": silver.silver_column(c.name), "description": f"{c.type} in the source"
                     + (f", stored as {c.warehouse_type}" if c.type != c.warehouse_type else "")}
                    for c in table.columns] + [
            {"name": "sys_start", "description": HISTORY_RULES},
            {"name": "sys_end", "description": "End of the version (exclusive); 'infinity' while current."}],
        "data_tests": [{"medallion.valid_history": {"arguments": {"key": key, "history": silver.history_model}}}],
    }
    if silver.history_model != silver.history:
        history["config"]["alias"] = silver.history
    if silver.partition_by:
        current = {
            "name": silver.current_model,
            "description": (f"The rows {table.qualified} holds now, one per key, range-partitioned by UTC month "
                            f"of {silver.partition_by}; last_commit_ts is when the row's last change committed."),
            "config": {"materialized": "current_state", "key": key, "partition_by": silver.partition_by,
                       "source_table": table.qualified, "object_prefix": naming.object_prefix(silver.base, 12),
                       "column_types": dict(silver.column_types), "persist_docs": {"relation": True},
                       **({"column_names": dict(silver.column_names)} if silver.column_names else {})},
        }
    else:
        current = {
            "name": silver.current_model,
            "description": f"The rows {table.qualified} holds now: the current versions of {silver.history}.",
            "config": {"materialized": "current_view"},
        }
    # the replay stops at the watermark of the model that read bronze: the history for a view
    # (which the view depends on), the current-state table itself otherwise
    reader = silver.current_model if silver.partition_by else silver.history_model
    current["data_tests"] = [{"medallion.current_matches_bronze_replay": {"arguments": {"history": reader}}}]
    if not engine.constraints:  # Iceberg has no constraints: the shape test is Spark's guard
        history["data_tests"] = [{"medallion.spark_valid_history": {"arguments": {"key": key}}}]
        del current["data_tests"]
    if silver.current_model != silver.base:
        current["config"]["alias"] = silver.base
    return [history, current]


def _write(path: Path, text: str) -> None:
    """Write only what changed: unchanged files keep dbt's partial parsing valid."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# libyaml's emitter when PyYAML has it: the same text, several times faster (every build writes these)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _yaml(data: object) -> str:
    return "# Generated by medallion from medallion.toml and bronze.table_schema: do not edit.\n" + \
        yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=100)


def link_package(project_dir: Path, dbt_project: Path | None) -> None:
    """Install the project's own dbt project as a package: a symlink in dbt_packages/, which is
    all that `dbt deps` does for a local package (without its second of start-up)."""
    packages = project_dir / "dbt_packages"
    wanted = {}
    if dbt_project is not None:
        name = yaml.safe_load((dbt_project / "dbt_project.yml").read_text(encoding="utf-8")).get("name")
        wanted[str(name)] = dbt_project
    if packages.exists():
        for entry in packages.iterdir():
            if entry.name not in wanted or not entry.is_symlink() or entry.resolve() != wanted[entry.name]:
                entry.unlink() if entry.is_symlink() or entry.is_file() else shutil.rmtree(entry)
    packages.mkdir(parents=True, exist_ok=True)
    for name, path in wanted.items():
        if not (packages / name).exists():
            (packages / name).symlink_to(path, target_is_directory=True)


def _link_models(link: Path, models: Path) -> None:
    """The build project's models/ is a link to the silver package's: one set of generated files
    (dbt walks a linked top folder; an absolute model path would put its compiled files there)."""
    models.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == models.resolve():
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():  # the folder a build project kept its models in before the silver package
        shutil.rmtree(link)
    link.symlink_to(models.resolve(), target_is_directory=True)


def project_path(home: Path, engine: Engine = POSTGRES) -> Path:
    """Where the build project of an engine lives (each has its own target/ and partial parse)."""
    return engine.project_path(home)


def silver_path(home: Path, engine: Engine = POSTGRES) -> Path:
    """Where silver's generated models live: the package medallion_silver, which the build
    project reads as its own models and `medallion dbt-setup` installs into your dbt project."""
    return project_path(home, engine).parent / "silver"


def write_project(home: Path, config: ProjectConfig, recorded: dict[str, RecordedTable],
                  engine: Engine = POSTGRES) -> BuildProject:
    """(Re)write the build project under home/dbt/project (home/dbt/spark/project for Spark)
    for what bronze holds now."""
    path = engine.project_path(home)
    package = silver_path(home, engine)
    silver, sources, notes = plan(config, recorded)
    project = BuildProject(path=path, silver=silver, sources=sources, notes=notes, dbt_project=config.dbt_project,
                           silver_path=package)
    _write(package / "dbt_project.yml", _yaml(_silver_package_yml()))
    _write(path / "dbt_project.yml", _yaml(_dbt_project_yml(engine)))
    _link_models(path / "models", project.models)
    _write(path / "profiles.yml", (ENGINE_DIR / engine.profiles_file).read_text(encoding="utf-8"))
    packages = [{"local": str(config.dbt_project)}] if config.dbt_project else []
    _write(path / "packages.yml", _yaml({"packages": packages}))
    link_package(path, config.dbt_project)
    _write(project.models / "bronze" / "_bronze__sources.yml", _yaml(_sources_yml(recorded, sources, engine)))

    silver_dir = project.models / "silver"
    wanted = {"_silver__models.yml"}
    models = []
    for table in silver:
        models += _model_yml(table, engine)
        # plain source()/ref() models that dbt's static parser reads without rendering Jinja;
        # the materializations (medallion/dbt/macros/silver) build the typed SQL themselves
        source = f"{{{{ source('bronze', '{table.source_name}') }}}}"
        history_sql = f"-- {table.table.qualified}: every version, built by the system_versioned materialization\n" \
                      f"select * from {source}\n"
        if table.partition_by:
            # built after its history: a gold mart that reads the current rows has its as-of
            # function read the history's (gold/plain_mart.sql), which must exist by then
            current_sql = f"-- {table.table.qualified}: the current rows, built by the current_state materialization\n" \
                          f"-- depends_on: {{{{ ref('{table.history_model}') }}}}\n" \
                          f"select * from {source}\n"
        else:
            current_sql = f"-- {table.table.qualified}: the current versions of its history (current_view materialization)\n" \
                          f"select * from {{{{ ref('{table.history_model}') }}}}\n"
        _write(silver_dir / f"{table.history_model}.sql", history_sql)
        _write(silver_dir / f"{table.current_model}.sql", current_sql)
        wanted |= {f"{table.history_model}.sql", f"{table.current_model}.sql"}
    _write(silver_dir / "_silver__models.yml", _yaml({"version": 2, "models": models}))
    for stale in silver_dir.iterdir():
        if stale.name not in wanted:
            stale.unlink() if stale.is_file() else shutil.rmtree(stale)
    return project
