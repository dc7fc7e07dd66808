"""The captured tables: the one list that bronze, silver's sources and the tests all follow."""

from __future__ import annotations

SOURCE_SCHEMA = "public"
BRONZE_SCHEMA = "bronze"

# Every base table of Pagila. A partitioned table is listed by its root: changes to any of
# its partitions, present or future, land in the root's bronze table.
CAPTURED_TABLES: tuple[str, ...] = (
    "actor",
    "address",
    "category",
    "city",
    "country",
    "customer",
    "film",
    "film_actor",
    "film_category",
    "inventory",
    "language",
    "payment",
    "rental",
    "staff",
    "store",
)


def bronze_table(table: str) -> str:
    """bronze.br_<table>_cdc, the name silver's dbt sources refer to."""
    return f"br_{table}_cdc"
