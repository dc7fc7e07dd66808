"""Jobs and schedules: the nightly run (ingest, then silver and gold) and a frequent ingest.

Both schedules start stopped: turn them on in the UI (Automation) or with
`dagster schedule start`; `dagster dev` runs the daemon that fires them."""

from __future__ import annotations

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

run_job = define_asset_job(
    "medallion_run", selection=AssetSelection.all(),
    description="The nightly job: bring bronze up to date, then build silver and gold (dbt build with tests).")
ingest_job = define_asset_job(
    "medallion_ingest", selection=AssetSelection.groups("bronze"),
    description="Capture the source's new changes into bronze (medallion ingest).")

nightly_run = ScheduleDefinition(name="nightly_run", job=run_job, cron_schedule="0 2 * * *",
                                 execution_timezone="UTC", default_status=DefaultScheduleStatus.STOPPED,
                                 description="Every night at 02:00 UTC: ingest, then build silver and gold.")
frequent_ingest = ScheduleDefinition(name="frequent_ingest", job=ingest_job, cron_schedule="*/5 * * * *",
                                     execution_timezone="UTC", default_status=DefaultScheduleStatus.STOPPED,
                                     description="Every 5 minutes: ingest, so bronze stays close to the source "
                                                 "and the slot does not pin WAL.")
