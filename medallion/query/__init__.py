"""Temporal SQL for people: SQL:2011 FOR SYSTEM_TIME on the warehouse's history tables.

rewrite() is pure (text in, PostgreSQL out, given a Catalog); run_query() and
explain_query() read the catalog from the warehouse and run read-only.
"""

from medallion.query.catalog import Catalog, load_catalog
from medallion.query.formats import display, to_csv, to_json
from medallion.query.rewrite import explain, rewrite
from medallion.query.run import INFINITY, QueryResult, explain_query, run_query

__all__ = ["INFINITY", "Catalog", "QueryResult", "display", "explain", "explain_query", "load_catalog",
           "rewrite", "run_query", "to_csv", "to_json"]
