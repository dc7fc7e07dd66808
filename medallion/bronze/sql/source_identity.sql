-- Which source this is: bronze refuses to mix changes from two different databases.
select (select system_identifier::text from pg_control_system()) as system_id,
       current_database() as database,
       (select oid from pg_database where datname = current_database()) as database_oid,
       clock_timestamp() as now
