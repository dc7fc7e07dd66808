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

-- The schemas whose tables created later join a pipeline's publication (written by
-- prepare-source): the publication lists tables, never whole schemas, so that a table without a
-- replica identity is never published (its UPDATE and DELETE would fail on the source).
create table if not exists medallion.publication_schema (
    pubname     name not null,
    schema_name name not null,
    primary key (pubname, schema_name)
);

-- A table of such a schema that has a replica identity (a primary key, an identity index or
-- FULL) joins the publication while it is still empty, so every row it ever gets is sent; called
-- at CREATE TABLE and at every ALTER TABLE (ADD PRIMARY KEY, REPLICA IDENTITY ...). Never fails
-- the DDL it runs in: a failure is a warning, and prepare-source publishes what is left.
create or replace function medallion.publish_if_ready(relid oid) returns boolean
language plpgsql security definer set search_path = pg_catalog as $publish$
declare
    target record;
    empty boolean;
    published boolean := false;
begin
    for target in
        select ps.pubname, n.nspname, c.relname
        from pg_class as c
        join pg_namespace as n on n.oid = c.relnamespace
        join medallion.publication_schema as ps on ps.schema_name = n.nspname
        join pg_publication as p on p.pubname = ps.pubname
        where c.oid = relid and c.relkind in ('r', 'p') and c.relpersistence = 'p' and not c.relispartition
          and (c.relreplident = 'f'
               or (c.relreplident = 'i' and exists (select from pg_index as i where i.indrelid = c.oid and i.indisreplident))
               or (c.relreplident = 'd' and exists (select from pg_index as i where i.indrelid = c.oid and i.indisprimary)))
          and not exists (select from pg_publication_rel as pr where pr.prpubid = p.oid and pr.prrelid = c.oid)
    loop
        begin
            execute format('select not exists (select from %I.%I)', target.nspname, target.relname) into empty;
            if empty then
                execute format('alter publication %I add table %I.%I', target.pubname, target.nspname, target.relname);
                published := true;
            end if;
        exception when others then
            raise warning 'medallion: % not added to publication %: %', format('%I.%I', target.nspname,
                target.relname), target.pubname, sqlerrm;
        end;
    end loop;
    return published;
end
$publish$;

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
                'table', medallion.relation_schema(command.objid),
                'published', medallion.publish_if_ready(command.objid))::text);
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
