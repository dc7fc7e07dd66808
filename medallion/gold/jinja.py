"""What dbt's Jinja reaches of medallion, as modules.medallion: the gold planner (through its
cache: a build whose marts were planned before imports no sqlglot), the build's notes and the
project's fingerprint. dbt runs in medallion's process (transform.py) or in medallion-dbt
(dbt_run.py); either patches dbt's context first."""

from __future__ import annotations


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
                              "schemas_sql": schemas_sql}
        return found

    modules.medallion = True  # type: ignore[attr-defined]
    base.get_context_modules = modules
