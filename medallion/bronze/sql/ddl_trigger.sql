-- On the source: every DDL on a table is announced in the change stream at its own position
-- and commit time, as a transactional logical message (prefix 'medallion.ddl'), with the
-- table's schema as the catalog holds it right after the command. Installed by
-- `medallion prepare-source` (event triggers need a superuser). The body of
-- medallion.relation_schema is the discovery query (medallion/source/sql/catalog_tables.sql).
create schema if not exists medallion;

create or replace function medallion.relation_schema(relid oid) returns jsonb
language sql stable as $relation_schema$
    select to_jsonb(t) from (/* discovery */) as t
$relation_schema$;

create or replace function medallion.capture_ddl() returns event_trigger
language plpgsql as $capture_ddl$
declare
    command record;
begin
    if tg_event = 'ddl_command_end' then
        for command in
            select * from pg_event_trigger_ddl_commands()
            where object_type in ('table', 'table column') and schema_name not in ('pg_temp', 'medallion')
        loop
            perform pg_logical_emit_message(true, 'medallion.ddl', jsonb_build_object(
                'event', case when command.command_tag in ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
                              then 'create' else 'alter' end,
                'command', command.command_tag,
                'table', medallion.relation_schema(command.objid))::text);
        end loop;
    elsif tg_event = 'sql_drop' then
        for command in
            select * from pg_event_trigger_dropped_objects()
            where object_type = 'table' and not is_temporary
        loop
            perform pg_logical_emit_message(true, 'medallion.ddl', jsonb_build_object(
                'event', 'drop', 'command', 'DROP TABLE', 'oid', command.objid,
                'schema', command.schema_name, 'name', command.object_name)::text);
        end loop;
    end if;
end
$capture_ddl$;

drop event trigger if exists medallion_ddl_end;
create event trigger medallion_ddl_end on ddl_command_end execute function medallion.capture_ddl();
drop event trigger if exists medallion_ddl_drop;
create event trigger medallion_ddl_drop on sql_drop execute function medallion.capture_ddl();
