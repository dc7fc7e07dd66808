-- The tables a publication sends (leaf partitions, as publish_via_partition_root = false sends them).
select schemaname, tablename from pg_publication_tables where pubname = %(publication)s
