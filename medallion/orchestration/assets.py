"""Assets, one group per layer: bronze (ingest), silver and gold (the dbt models; dbt tests are
asset checks). Each asset calls the library (medallion.pipeline) or dbt: no logic lives here.

The asset graph follows the selection: one bronze asset per captured table (the dbt project's
bronze sources) and one asset per generated silver model and per model of the project's own dbt.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation at run time.
import json
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (AssetExecutionContext, AssetKey, AssetSpec, AssetsDefinition, MaterializeResult, ResourceParam,
                     multi_asset)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from medallion import pipeline
from medallion.orchestration.keys import key_part, relation
from medallion.orchestration.resources import MedallionResource
from medallion.transform import FULL_TESTS_VARS

BRONZE = "bronze"


class LayerTranslator(DagsterDbtTranslator):
    """dbt nodes as assets keyed and grouped by layer: silver/dim_customer_hist in group silver.

    Sources are keyed (source name, table), as dagster-dbt does: bronze/br_customer_cdc, which
    the bronze asset materialises. Every key part goes through key_part (any table name gives a
    valid key); the relation's real name is the `relation` metadata and opens the description."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        props = dbt_resource_props
        if props["resource_type"] == "source":
            return AssetKey([key_part(props["source_name"]), key_part(props["name"])])
        return AssetKey([key_part(self._layer(props)), key_part(props.get("alias") or props["name"])])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return key_part(self._layer(dbt_resource_props))

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        own = dbt_resource_props.get("description") or ""
        return f"{_relation(dbt_resource_props)}" + (f": {own}" if own else "")

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**super().get_metadata(dbt_resource_props), "relation": _relation(dbt_resource_props)}

    @staticmethod
    def _layer(props: Mapping[str, Any]) -> str:
        # the schema a model lands in is its layer (silver, gold)
        return props.get("schema") or "silver"


def _relation(props: Mapping[str, Any]) -> str:
    """The table or view a dbt node is in the warehouse, as SQL names it: silver."app__Order Line_hist"."""
    name = props.get("identifier") if props["resource_type"] == "source" else props.get("alias")
    return relation(props.get("schema") or "", name or props["name"])


def _bronze_specs(manifest: Mapping[str, Any]) -> list[AssetSpec]:
    """One asset per bronze table: the sources of the dbt project (models/bronze), keyed as the
    translator keys the dbt sources that read them."""
    sources = manifest["sources"].values()
    translator = LayerTranslator()
    return [AssetSpec(key=translator.get_asset_key(s), group_name=BRONZE,
                      description=translator.get_description(s),
                      metadata={"relation": _relation(s), "table": s.get("identifier") or s["name"]})
            for s in sorted(sources, key=lambda s: s["name"]) if s["source_name"] == BRONZE]


def build_assets(project: DbtProject) -> list[AssetsDefinition]:
    """The bronze ingest (one multi-asset, a spec per captured table) and the dbt models."""
    # read here, not handed over as a path: dagster-dbt caches a manifest by its path, and a
    # process that loads the definitions twice (another project, new tables) must see the new one
    manifest = json.loads(project.manifest_path.read_text(encoding="utf-8"))

    @multi_asset(specs=_bronze_specs(manifest), name="bronze_ingest", can_subset=False)
    def bronze(context: AssetExecutionContext,
               medallion: ResourceParam[MedallionResource]) -> Iterator[MaterializeResult]:
        """Bronze: capture the source's committed changes since the last ingest (the first one snapshots)."""
        ctx = medallion.context
        report = pipeline.ingest(ctx, notify=context.log.info)
        context.log.info(f"ingest: {report.snapshot_rows} snapshot rows, {report.changes} changes "
                         f"in {len(report.batches)} batches")
        counts = pipeline.status(ctx).counts
        for spec in context.assets_def.specs:
            table = str(spec.metadata["table"])
            yield MaterializeResult(asset_key=spec.key, metadata={
                "rows": counts.get(table, 0), "changes_ingested_this_run": report.changes,
                "snapshot_rows_this_run": report.snapshot_rows})

    @dbt_assets(manifest=manifest, project=project, dagster_dbt_translator=LayerTranslator(), name="silver_and_gold")
    def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource,
                   medallion: ResourceParam[MedallionResource]) -> Iterator[Any]:
        """Silver and gold: `dbt build` of the build project (models, then their tests as asset
        checks over whole tables: the nightly full test)."""
        target = medallion.context.home / "dbt" / "dagster" / context.run.run_id
        with medallion.dbt_profile():
            yield from dbt.cli(["build", "--vars", FULL_TESTS_VARS], context=context, target_path=target).stream()
        for line in pipeline.grant_readers(medallion.context):  # analysts read what dbt made
            context.log.warning(line)

    return [bronze, dbt_models]
