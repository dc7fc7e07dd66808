"""The source side: the embedded PostgreSQL cluster and the source catalog (what each table is)."""
