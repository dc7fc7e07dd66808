-- Incremental bookkeeping. Bronze is written in commit order, so commit_lsn only grows: the
-- highest commit_lsn a model has applied is a safe boundary for its next build.

{#- The engine's bookkeeping lives in a schema of its own (docs/architecture.md): silver and gold
    hold only what analysts read, and the analyst role is granted neither this schema nor its
    tables. Each bookkeeping relation is named by exactly one macro below. -#}

{% macro medallion_bookkeeping_schema() %}{{ return('medallion') }}{% endmacro %}

{% macro medallion_watermark_relation() %}{{ return(medallion.medallion_bookkeeping_schema() ~ '.build_watermark') }}{% endmacro %}

{% macro medallion_follow_step_relation() %}{{ return(medallion.medallion_bookkeeping_schema() ~ '.follow_step') }}{% endmacro %}

{% macro medallion_stored_build_relation() %}{{ return(medallion.medallion_bookkeeping_schema() ~ '.stored_build') }}{% endmacro %}

{% macro medallion_state_relation(relation, suffix) %}
    {#- A table the engine keeps for one model (a gold mart's __seen, __state): in the
        bookkeeping schema, named after the model's schema and name. The lake (Spark) keeps it
        beside the model, in its own catalog. -#}
    {%- if target.type == 'spark' -%}
        {{- return(api.Relation.create(database=relation.database, schema=relation.schema,
                                       identifier=relation.identifier ~ suffix, type='table')) -}}
    {%- endif -%}
    {{- return(api.Relation.create(database=relation.database, schema=medallion.medallion_bookkeeping_schema(),
                                   identifier=relation.schema ~ '__' ~ relation.identifier ~ suffix, type='table')) -}}
{% endmacro %}


{% macro medallion_adopt_older_bookkeeping() %}
    {#- A warehouse built by an earlier version kept the bookkeeping in silver (build_watermark,
        follow_step, stored_build) and beside each mart (<mart>__seen, <mart>__basis): moved into
        the bookkeeping schema at the first build, so nothing is rebuilt and nothing is stuck.
        A table still in the old place was written by an earlier version after this one moved it
        (this one always moves it away), so it replaces the one in the bookkeeping schema. -#}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set schema = medallion.medallion_bookkeeping_schema() -%}
    {% do run_query("create schema if not exists " ~ schema) %}
    {%- set older = run_query("
        select n.nspname, c.relname, substring(c.relname from '__(?:seen|basis)$')
        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p') and not c.relispartition and pg_has_role(c.relowner, 'USAGE')
          and n.nspname not in (" ~ medallion.medallion_literal(schema) ~ ", 'bronze', 'pg_catalog', 'information_schema')
          and ((n.nspname = 'silver' and c.relname in ('build_watermark', 'follow_step', 'stored_build'))
               or (c.relname ~ '__(seen|basis)$'
                   and exists (select from pg_class as m where m.relnamespace = c.relnamespace
                                                           and m.relname = regexp_replace(c.relname, '__(seen|basis)$', ''))))") -%}
    {%- for row in older.rows -%}
        {%- set old = api.Relation.create(database=target.database, schema=row[0], identifier=row[1], type='table') -%}
        {%- if row[2] -%}
            {%- set new = medallion.medallion_state_relation(api.Relation.create(database=target.database, schema=row[0],
                                                       identifier=row[1][:-(row[2] | length)]), row[2]) -%}
        {%- else -%}
            {%- set new = api.Relation.create(database=target.database, schema=schema, identifier=row[1], type='table') -%}
        {%- endif -%}
        {% do log("moving " ~ old ~ " (an earlier version's bookkeeping) to " ~ new, info=true) %}
        {% do run_query("drop table if exists " ~ new ~ "; alter table " ~ old ~ " set schema " ~ adapter.quote(schema)
                        ~ "; alter table " ~ adapter.quote(schema) ~ "." ~ adapter.quote(row[1]) ~ " rename to "
                        ~ adapter.quote(new.identifier)
                        if new.identifier != row[1] else
                        "drop table if exists " ~ new ~ "; alter table " ~ old ~ " set schema " ~ adapter.quote(schema)) %}
    {%- endfor -%}
    {{ return('') }}
{% endmacro %}


{% macro medallion_prepare_warehouse() %}
    {%- do medallion.medallion_adopt_older_bookkeeping() %}
    create extension if not exists btree_gist;
    create schema if not exists silver;
    create schema if not exists {{ medallion.medallion_bookkeeping_schema() }};
    create table if not exists {{ medallion.medallion_watermark_relation() }} (
        model           text   primary key,  -- schema.table of the incremental model
        bronze_table    text   not null,     -- the bronze table it reads
        last_commit_lsn bigint not null      -- every bronze row up to here is applied
    );
    -- the source time up to which the model is complete: every source commit before it applied
    alter table {{ medallion.medallion_watermark_relation() }} add column if not exists complete_to timestamptz;
    -- the model's tests passed for every bronze row up to here (incremental tests start after it)
    alter table {{ medallion.medallion_watermark_relation() }} add column if not exists tested_to bigint;
    -- the source time from which the model's history is whole: a table that joined capture later
    -- (or was re-synced alone) was read by an online snapshot that finished then; null: from the start
    alter table {{ medallion.medallion_watermark_relation() }} add column if not exists complete_from timestamptz;
    -- silver's horizon: the source commit time up to which every table of silver is complete
    -- (the slowest table decides; a build that stopped half-way holds it back). Analysts call it
    -- without seeing the bookkeeping: it runs with its owner's rights (security definer).
    create or replace function silver.horizon() returns timestamptz
    language sql stable security definer set search_path = pg_catalog, pg_temp as $horizon$
        select min(complete_to) from {{ medallion.medallion_watermark_relation() }} where model like 'silver.%'
    $horizon$;
    -- per history, the source time from which it is whole (null: from the start); `medallion
    -- query` warns when asked about earlier times (medallion/query/run.py)
    create or replace function silver.whole_from() returns table (model text, complete_from timestamptz)
    language sql stable security definer set search_path = pg_catalog, pg_temp as $whole_from$
        select w.model, w.complete_from from {{ medallion.medallion_watermark_relation() }} as w where w.model like 'silver.%'
    $whole_from$;
    {{ medallion.medallion_prepare_follow() }}
{% endmacro %}


{% macro medallion_watermark(relation) %}
    {#- The last bronze commit_lsn applied to relation; -1 before its first build. -#}
    {%- set result = run_query(
        "select coalesce(max(last_commit_lsn), -1) from " ~ medallion.medallion_watermark_relation() ~ " where model = "
        ~ medallion.medallion_literal(relation.schema ~ '.' ~ relation.identifier)) -%}
    {{- return(result.columns[0].values()[0] | int) -}}
{% endmacro %}


{% macro medallion_bronze_high(bronze_relation, floor) %}
    {#- How far bronze is complete now: the ingest state's last commit position (every source
        transaction up to it is in bronze, those that changed no row of this table too, e.g. a
        DDL); a bronze written without the ingester has only its rows' positions. This build
        applies rows up to here and no further, so rows an ingest commits meanwhile wait for the
        next build instead of half-applying. -#}
    {%- set result = run_query(medallion.medallion_bronze_high_sql(bronze_relation, floor)) -%}
    {{- return(result.columns[0].values()[0] | int) -}}
{% endmacro %}


{% macro medallion_bronze_high_sql(bronze_relation, floor) -%}
    select greatest(coalesce((select max((last_commit_lsn - '0/0'::pg_lsn)::bigint) from bronze.ingest_state),
                             (select max(commit_lsn) from {{ bronze_relation }})), {{ floor }})
{%- endmacro %}


{% macro medallion_set_watermark_sql(relation, bronze_relation, lsn) %}
    {%- set online = medallion.medallion_online_snapshot_sql(bronze_relation) %}
    insert into {{ medallion.medallion_watermark_relation() }} (model, bronze_table, last_commit_lsn, complete_to, complete_from)
    values ({{ medallion.medallion_literal(relation.schema ~ '.' ~ relation.identifier) }},
            {{ medallion.medallion_literal(bronze_relation) }}, {{ lsn }},
            least(({{ medallion.medallion_complete_to_sql(bronze_relation, lsn) }}), ({{ online.open_since }})),
            ({{ online.whole_from }}))
    on conflict (model) do update
        set bronze_table = excluded.bronze_table, last_commit_lsn = excluded.last_commit_lsn,
            complete_to = excluded.complete_to, complete_from = excluded.complete_from
{% endmacro %}


{% macro medallion_complete_to_sql(bronze_relation, lsn) %}
    {#- The source time up to which bronze was complete when a build applied it up to lsn: the
        ingest state's last commit time, or later when the ingester had caught up there (an idle
        source moves it forward); without a state, the newest commit time bronze holds. -#}
    select coalesce(
        (select greatest(s.last_commit_ts,
                         case when s.caught_up_lsn >= s.last_commit_lsn then s.caught_up_at end)
         from bronze.ingest_state as s
         where (s.last_commit_lsn - '0/0'::pg_lsn)::bigint = {{ lsn }}
         limit 1),
        (select max(commit_ts) from {{ bronze_relation }} where commit_lsn <= {{ lsn }}))
{% endmacro %}


{% macro medallion_online_snapshot_sql(bronze_relation) %}
    {#- From bronze.online_snapshot (medallion/bronze/online_snapshot.py), when bronze has it:
        open_since, the start of a snapshot still under way (the table is not complete after it,
        so the horizon stays there); whole_from, the end of the latest finished one (the table's
        history before it is not known). -#}
    {%- set exists = execute and run_query("select to_regclass('bronze.online_snapshot') is not null")
                                 .columns[0].values()[0] -%}
    {%- if not exists -%}
        {{- return({'open_since': 'null::timestamptz', 'whole_from': 'null::timestamptz'}) -}}
    {%- endif -%}
    {%- set name = medallion.medallion_literal(bronze_relation.identifier) -%}
    {{- return({
        'open_since': "select min(coalesce(started_ts, requested_at)) from bronze.online_snapshot where bronze_table = "
                      ~ name ~ " and finished_ts is null",
        'whole_from': "select max(finished_ts) from bronze.online_snapshot where bronze_table = " ~ name}) -}}
{% endmacro %}


{% macro medallion_forget_watermark_sql(relation) %}
    delete from {{ medallion.medallion_watermark_relation() }}
    where model = {{ medallion.medallion_literal(relation.schema ~ '.' ~ relation.identifier) }}
{% endmacro %}


{% macro medallion_bronze_of(model) %}
    {#- The bronze table an incremental model reads: its one source(). (A source() value passed
        into a macro is a placeholder while dbt parses, so the name cannot travel via config.) -#}
    {%- if model.sources | length != 1 -%}
        {{ exceptions.raise_compiler_error(model.name ~ " must read exactly one bronze source(), not "
                                           ~ (model.sources | length)) }}
    {%- endif -%}
    {{- return(source(model.sources[0][0], model.sources[0][1])) -}}
{% endmacro %}
