"""Who may do what: the least-privilege roles of a pipeline and the grants that keep them so.

Three roles (docs/reliability.md, "Security and roles"): capture on the source (REPLICATION and
SELECT on the captured tables), the pipeline on the warehouse (owns bronze, silver and gold),
and analysts (read silver and gold, nothing else; `medallion query` logs in as it).
"""
