"""A long-running Dagster job for `medallion run --follow`: silver and gold seconds behind the source.

Launch `medallion_follow` once (Launchpad, or `dagster job launch -j medallion_follow`); it runs
until the run is terminated, which stops it cleanly (the batch in hand is written and applied).
The nightly `medallion_run` (dbt build with tests) runs beside it; leave `frequent_ingest` off
while it runs: the follower already holds the replication slot.
"""

from dagster import OpExecutionContext, ResourceParam, in_process_executor, job, op

from medallion.follow import FollowReport, follow
from medallion.orchestration.resources import MedallionResource


@op(description="Ingest continuously and apply each batch to silver and gold until the run is terminated.")
def follow_source(context: OpExecutionContext, medallion: ResourceParam[MedallionResource]) -> None:
    def on_round(report: FollowReport) -> None:
        context.log.debug(f"{report.changes} changes ingested, {report.applied} model refreshes, "
                          f"{report.builds} dbt builds")

    report = follow(medallion.context, context.log.info, on_round)
    context.log.info(f"stopped: {report.changes} changes ingested, {report.applied} model refreshes in "
                     f"{report.passes} rounds, {report.builds} dbt builds")


@job(executor_def=in_process_executor, description=(
    "Long-running: `medallion run --follow` (silver and gold kept seconds behind the source). "
    "Terminate the run to stop it; the nightly medallion_run still tests everything."))
def medallion_follow() -> None:
    follow_source()
