"""The lakehouse at scale: bronze exported to Apache Iceberg, for silver and gold on Spark.

    warehouse PostgreSQL bronze --export.py (pyiceberg, exactly once)--> Iceberg bronze
        --dbt on Spark (medallion/dbt/macros/**/spark)--> Iceberg silver and gold

target.py resolves medallion.toml's [lake] into a catalog and a location; export.py appends
bronze's new rows to Iceberg, incrementally by commit position.
"""
