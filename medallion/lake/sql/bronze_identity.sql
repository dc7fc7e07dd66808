-- Which bronze this is: the warehouse database, its bronze schema and when bronze recorded its
-- first table. A new warehouse or a reset bronze is another one; a lake table holds the rows of
-- one bronze only (their commit positions would otherwise interleave two histories).
select (select oid from pg_database where datname = current_database())::text
       || ':' || 'bronze'::regnamespace::oid::text
       || ':' || coalesce((select extract(epoch from min(recorded_at))::text from bronze.table_schema), '')
