-- The latest recorded schema of each captured table (or of one, when %(only)s names it).
select distinct on (bronze_table)
    bronze_table, schema_name, table_name, qualified, commit_lsn, columns, key_columns, replica_identity, event,
    relid
from bronze.table_schema
where %(only)s::text is null or bronze_table = %(only)s::text
order by bronze_table, commit_lsn desc, ordinal desc
