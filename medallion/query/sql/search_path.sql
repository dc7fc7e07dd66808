-- The schemas an unqualified table name is looked up in, in order (pg_catalog and the
-- session's temporary schema included, as PostgreSQL itself resolves names).
select schema_name
from unnest(pg_catalog.current_schemas(true)) with ordinality as path (schema_name, position)
order by position
