"""Benchmarks: the pipeline side by side with PostgreSQL's own decoding and with dbt snapshots."""
