"""Dagster orchestration of the pipeline: bronze (ingest) and the dbt models as assets.

Small modules, one concern each: resources (the pipeline's settings, the dbt CLI),
assets (bronze, silver, gold), schedules (nightly run, frequent ingest), definitions (wiring).
The work itself stays in medallion.pipeline and the dbt project: Dagster only calls them.
`dagster dev` / `dagster definitions validate` find `definitions.defs` through
[tool.dagster] in pyproject.toml; `medallion ui` starts the UI on the embedded default.
"""
