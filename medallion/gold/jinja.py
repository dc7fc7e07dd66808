"""What dbt's Jinja reaches of medallion, as modules.medallion: the gold planner (through its
cache: a build whose marts were planned before imports no sqlglot), the build's notes, the
project's fingerprint and what `medallion build` gives the dbt command it runs (`given`). dbt
runs in medallion's process (transform.py) or in medallion-dbt (dbt_run.py); either patches
dbt's context first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_GIVEN: dict[str, object] = {}


@contextmanager
def giving(**values: object) -> Iterator[None]:
    """Values for the dbt command this process runs now, read in Jinja as
    modules.medallion.given(name). Not --vars: dbt parses the whole project again whenever its
    vars change (no partial parsing), and the project's fingerprint changes with every new table."""
    _GIVEN.clear()
    _GIVEN.update(values)
    try:
        yield
    finally:
        _GIVEN.clear()


def given(name: str) -> object:
    """A value `giving` set for this dbt command; None when there is none (plain dbt, Dagster)."""
    return _GIVEN.get(name)


def patch_dbt_context() -> None:
    """Make plan_mart callable from dbt's Jinja as modules.medallion.plan_mart; idempotent."""
    import dbt.context.base as base

    from medallion.dbt_fingerprint import project_fingerprint, schemas_sql
    from medallion.gold.notes import note
    from medallion.gold.plan_cache import cached_plan_mart

    if getattr(base.get_context_modules, "medallion", False):
        return
    original = base.get_context_modules

    def modules() -> dict:
        found = original()
        found["medallion"] = {"plan_mart": cached_plan_mart, "note": note, "project_fingerprint": project_fingerprint,
                              "schemas_sql": schemas_sql, "given": given}
        return found

    modules.medallion = True  # type: ignore[attr-defined]
    base.get_context_modules = modules
