-- Incremental bookkeeping. Bronze is written in commit order, so commit_lsn only grows: the
-- highest commit_lsn a model has applied is a safe boundary for its next build.

{% macro medallion_prepare_warehouse() %}
    create extension if not exists btree_gist;
    create schema if not exists silver;
    create table if not exists silver.build_watermark (
        model           text   primary key,  -- schema.table of the incremental model
        bronze_table    text   not null,     -- the bronze table it reads
        last_commit_lsn bigint not null      -- every bronze row up to here is applied
    );
    -- the source time up to which the model is complete: every source commit before it applied
    alter table silver.build_watermark add column if not exists complete_to timestamptz;
    -- the model's tests passed for every bronze row up to here (incremental tests start after it)
    alter table silver.build_watermark add column if not exists tested_to bigint;
    -- the source time from which the model's history is whole: a table that joined capture later
    -- (or was re-synced alone) was read by an online snapshot that finished then; null: from the start
    alter table silver.build_watermark add column if not exists complete_from timestamptz;
    -- silver's horizon: the source commit time up to which every table of silver is complete
    -- (the slowest table decides; a build that stopped half-way holds it back)
    create or replace function silver.horizon() returns timestamptz
    language sql stable as $horizon$
        select min(complete_to) from silver.build_watermark where model like 'silver.%'
    $horizon$;
    {{ medallion.medallion_prepare_follow() }}
{% endmacro %}


{% macro medallion_watermark(relation) %}
    {#- The last bronze commit_lsn applied to relation; -1 before its first build. -#}
    {%- set result = run_query(
        "select coalesce(max(last_commit_lsn), -1) from silver.build_watermark where model = "
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
    insert into silver.build_watermark (model, bronze_table, last_commit_lsn, complete_to, complete_from)
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
    delete from silver.build_watermark
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
