"""Assets, one group per layer: bronze (ingest), silver and gold (the dbt models; dbt tests are
asset checks). Each asset calls the library (medallion.pipeline) or dbt: no logic lives here.

The asset graph follows the selection: one bronze asset per captured table (the dbt project's
bronze sources) and one asset per generated silver model and per model of the project's own dbt.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation at run time.
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetSpec, AssetsDefinition, MaterializeResult, multi_asset
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from medallion import pipeline
from medallion.orchestration.resources import MedallionResource

BRONZE = "bronze"


class LayerTranslator(DagsterDbtTranslator):
    """dbt nodes as assets keyed and grouped by layer: silver/dim_customer_hist in group silver.

    Sources keep dagster-dbt's key, (source name, table): bronze/br_customer_cdc, which the
    bronze asset materialises."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return AssetKey([self._layer(dbt_resource_props), dbt_resource_props.get("alias")
                         or dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return self._layer(dbt_resource_props)

    @staticmethod
    def _layer(props: Mapping[str, Any]) -> str:
        # the schema a model lands in is its layer (silver, gold)
        return props.get("schema") or "silver"


def _bronze_specs(manifest: Path) -> list[AssetSpec]:
    """One asset per bronze table: the sources of the dbt project (models/bronze)."""
    sources = json.loads(manifest.read_text())["sources"].values()
    return [AssetSpec(key=AssetKey([BRONZE, s["name"]]), group_name=BRONZE,
                      description=s.get("description") or None)
            for s in sorted(sources, key=lambda s: s["name"]) if s["source_name"] == BRONZE]


def build_assets(manifest: Path) -> list[AssetsDefinition]:
    """The bronze ingest (one multi-asset, a spec per captured table) and the dbt models."""

    @multi_asset(specs=_bronze_specs(manifest), name="bronze_ingest", can_subset=False)
    def bronze(context: AssetExecutionContext, medallion: MedallionResource) -> Iterator[MaterializeResult]:
        """Bronze: capture the source's committed changes since the last ingest (the first one snapshots)."""
        settings = medallion.settings()
        report = pipeline.ingest(settings, notify=context.log.info)
        context.log.info(f"ingest: {report.snapshot_rows} snapshot rows, {report.changes} changes "
                         f"in {len(report.batches)} batches")
        counts = pipeline.status(settings).counts
        for spec in context.assets_def.specs:
            table = spec.key.path[-1]
            yield MaterializeResult(asset_key=spec.key, metadata={
                "rows": counts.get(table, 0), "changes_ingested_this_run": report.changes,
                "snapshot_rows_this_run": report.snapshot_rows})

    @dbt_assets(manifest=manifest, dagster_dbt_translator=LayerTranslator(), name="silver_and_gold")
    def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, medallion: MedallionResource) -> Iterator[Any]:
        """Silver and gold: `dbt build` of the build project (models, then their tests as asset checks)."""
        target = medallion.settings().home / "dbt" / "dagster" / context.run.run_id
        with medallion.dbt_profile():
            yield from dbt.cli(["build"], context=context, target_path=target).stream()
        for line in pipeline.grant_readers(medallion.settings()):  # analysts read what dbt made
            context.log.warning(line)

    return [bronze, dbt_models]
