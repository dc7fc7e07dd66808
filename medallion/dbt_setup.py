"""Your own dbt project as dbt's root: `dbt build`, `dbt docs generate` or an IDE run there
build silver and gold, as `medallion build` does.

`medallion dbt-setup` installs two local packages into the project named by `[transform]
dbt_project` (the way Fivetran's source packages come into a project): `medallion`, the engine's
materializations and macros (medallion/dbt, a dbt package), and `medallion_silver`, silver's
models generated from bronze under MEDALLION_HOME (medallion/silver/project.py). It adds them to
the project's packages.yml (relative local paths; other entries are kept) and links them into
its dbt_packages/ as `dbt deps` would. `medallion build` itself writes nothing into your folder:
it builds through a project of its own under MEDALLION_HOME, your project a package of it, so
that builds of two warehouses never share a dbt_packages/.

dbt started as a program needs medallion's dbt plugin (dbt_medallion.py, loaded by dbt from
every `dbt_*` module on the path): it makes the gold planner callable from Jinja and puts the
engine package in dbt's macro search order, after your project (its generate_schema_name
keeps `+schema: gold` the schema gold, not silver_gold). A plain run stores each model's
statements with the fingerprint `medallion build` computes for the same files
(project_fingerprint), so the next `medallion build` runs them without starting dbt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from medallion.context import Context
from medallion.errors import MedallionError
from medallion.settings import Settings
from medallion.silver.project import ENGINE_DIR, SILVER_PACKAGE, project_path, silver_path

from medallion.dbt_fingerprint import ENGINE_PACKAGE, PACKAGES_DIR


@dataclass(frozen=True)
class OwnProject:
    """What `medallion dbt-setup` did, and how to run dbt there."""

    path: Path
    packages: dict[str, Path]  # package name -> the folder installed
    profiles_dir: Path


def setup(settings: Settings | Context) -> OwnProject:
    """Generate silver's package for what bronze holds and install it, with the engine's, into
    the project's own dbt project (packages.yml, dbt_packages/)."""
    from medallion.transform import prepare_project

    ctx = Context.of(settings)
    config = ctx.config
    if config.dbt_project is None:
        raise MedallionError(f"{config.where} names no dbt project of yours ([transform] dbt_project = \"my_dbt\"): "
                             "nothing to set up")
    prepare_project(ctx)
    own = Path(config.dbt_project)
    packages = {ENGINE_PACKAGE: ENGINE_DIR, SILVER_PACKAGE: silver_path(ctx.home)}
    _packages_yml(own, packages)
    _link(own / PACKAGES_DIR, packages)
    return OwnProject(own, packages, project_path(ctx.home))


def _packages_yml(own: Path, packages: dict[str, Path]) -> None:
    """Our two local packages in packages.yml, by paths relative to the project; every other
    entry (hub or git packages of your own) kept as it is."""
    path = own / "packages.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    data = data if isinstance(data, dict) else {}
    wanted = [{"local": os.path.relpath(folder, own)} for folder in packages.values()]
    kept = [entry for entry in data.get("packages") or []
            if not (isinstance(entry, dict) and "local" in entry and _package_name(own / entry["local"]) in packages)]
    new = {**data, "packages": kept + wanted}
    if new != data:
        path.write_text("# medallion dbt-setup keeps the two local packages below (medallion, medallion_silver)\n"
                        + yaml.safe_dump(new, sort_keys=False), encoding="utf-8")


def _package_name(folder: Path) -> str | None:
    try:
        return str(yaml.safe_load((folder / "dbt_project.yml").read_text(encoding="utf-8")).get("name"))
    except (OSError, AttributeError, yaml.YAMLError):
        return None


def _link(installed: Path, packages: dict[str, Path]) -> None:
    """A symlink per local package, which is what `dbt deps` installs for one."""
    installed.mkdir(parents=True, exist_ok=True)
    for name, folder in packages.items():
        link = installed / name
        if link.is_symlink() and link.resolve() == folder.resolve():
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            import shutil

            shutil.rmtree(link)
        link.symlink_to(folder.resolve(), target_is_directory=True)


# What a plain dbt run needs (dbt_medallion.py)

def prepare_dbt() -> None:
    """What medallion's dbt plugin does in every dbt run: the gold planner reachable from Jinja
    and, in a project with the engine package, that package in the `dbt` macro namespace's
    search order after the project (generate_schema_name and any default__ it defines)."""
    from dbt.config.project import Project

    from medallion.gold.jinja import patch_dbt_context

    patch_dbt_context()
    if getattr(Project.get_macro_search_order, "medallion", False):
        return
    original = Project.get_macro_search_order

    def search_order(self: Project, macro_namespace: str) -> list[str] | None:
        found = original(self, macro_namespace)
        if found is None and macro_namespace == "dbt" and ENGINE_PACKAGE in (getattr(self, "dependencies", None) or {}):
            return [self.project_name, ENGINE_PACKAGE, "dbt"]
        return found

    search_order.medallion = True  # type: ignore[attr-defined]
    Project.get_macro_search_order = search_order  # type: ignore[method-assign]
