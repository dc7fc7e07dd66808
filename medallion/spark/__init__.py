"""The Spark engine: the same dbt project as PostgreSQL, run by Spark on the Iceberg lake.

session.py starts (or reuses) the in-process SparkSession with Iceberg and the lake's catalog;
dbt-spark's `session` method runs the build project on it (medallion/transform.py), with the
spark implementations of the engine's materializations (medallion/dbt/macros/**/spark).
query.py runs `medallion query --engine spark`; fingerprint.py compares the two engines.
"""
