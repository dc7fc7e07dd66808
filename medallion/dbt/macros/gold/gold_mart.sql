{#-
    Incremental gold marts. A mart is an aggregate over line sets (one row per payment, one
    per rental: models/gold/int_*_lines). Each mart keeps <mart>__basis: per line, the group
    (the mart's grain) it counted in at the last build and a fingerprint of the fields the mart
    reads from it. A build:

      1. computes the current lines' (group, fingerprint) and compares them with the basis;
      2. the groups to recompute (gold_scope) are the old AND the new group of every line that
         appeared, disappeared, moved or changed a field the mart reads;
      3. deletes those groups from the mart, inserts them recomputed from the current lines
         (the model's SQL filters its lines with gold_in_scope()), and brings the basis up to
         date for them, all in one transaction.

    A group no line belongs to any more is deleted and not re-inserted. The first build and
    --full-refresh compute every group and write the basis from scratch: the same SQL without
    the scope filter, so an incremental build and a full one give the same rows.

    config: grain (list of columns, the mart's key; every line set has them), inputs (list of
    {lines: model name, key: line key column, fields: columns the mart reads}).
-#}

{% macro gold_basis_relation(relation) %}
    {{- return(api.Relation.create(database=relation.database, schema=relation.schema,
                                   identifier=relation.identifier ~ '__basis', type='table')) -}}
{% endmacro %}


{% macro gold_mart_is_incremental() %}
    {#- the mart and its basis exist and no full refresh was asked for (compile and run agree) -#}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {%- set existing = load_relation(this) -%}
    {%- set basis = load_relation(gold_basis_relation(this)) -%}
    {{- return(existing is not none and existing.type == 'table' and basis is not none
               and not should_full_refresh()) -}}
{% endmacro %}


{% macro gold_in_scope() %}
    {#- the filter a mart's SQL puts on its lines: the groups this build recomputes, or all
        (per engine: Spark's scope is a temporary view named after the mart, gold/spark) -#}
    {{- return(adapter.dispatch('gold_in_scope', 'medallion')()) -}}
{% endmacro %}


{% macro default__gold_in_scope() %}
    {%- if gold_mart_is_incremental() -%}
        {%- set grain = medallion_column_list(config.require('grain')) -%}
        ({{ grain }}) in (select {{ grain }} from gold_scope)
    {%- else -%}
        true
    {%- endif -%}
{% endmacro %}


{% macro gold_lines_sql(grain, inputs) %}
    {#- one row per line of every input: (input: its position in inputs, line_key, grain...,
        fp: md5 of the group and the fields the mart reads) -#}
    {%- for input in inputs %}
    select
        {{ loop.index }}::smallint as input,
        {{ medallion_quote(input['key']) }} as line_key,
        {{ medallion_column_list(grain) }},
        md5(row({{ medallion_column_list(grain) }}, {{ medallion_column_list(input['fields']) }})::text) as fp
    from {{ ref(input['lines']) }}
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
{% endmacro %}


{% macro gold_scope_sql(basis, grain, inputs) %}
{%- set g = medallion_column_list(grain) -%}
{%- set old = [] -%}
{%- for column in grain %}{% do old.append('old_' ~ column) %}{% endfor -%}
-- sorting 2 x 16k Pagila lines spills at the default 4MB; hashing them in memory does not
set local work_mem = '64MB';

create temporary table gold_lines on commit drop as
{{ gold_lines_sql(grain, inputs) }};

create temporary table gold_scope on commit drop as
with current_lines as (
    select * from gold_lines
),

last_build as (
    select * from {{ basis }}
),

differences as (
    -- lines that appeared, disappeared, or changed group or a field the mart reads
    select
        {{ medallion_column_list(grain, 'c.') }},
        {%- for column in grain %}
        b.{{ medallion_quote(column) }} as {{ medallion_quote('old_' ~ column) }}{{ "," if not loop.last }}
        {%- endfor %}
    from current_lines as c
    full join last_build as b on b.input = c.input and b.line_key = c.line_key
    where c.fp is distinct from b.fp
),

final as (
    -- the group each such line is in now, and the one it counted in at the last build
    select {{ g }} from differences where {{ medallion_quote(grain[0]) }} is not null
    union
    select {{ medallion_column_list(old) }} from differences where {{ medallion_quote(old[0]) }} is not null
)

select * from final;
analyze gold_scope;
{% endmacro %}


{% materialization gold_mart, adapter='postgres' %}
    {%- set grain = config.require('grain') -%}
    {%- set inputs = config.require('inputs') -%}
    {%- set g = medallion_column_list(grain) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set basis_relation = gold_basis_relation(this) -%}
    {%- set incremental = gold_mart_is_incremental() -%}
    {%- set existing_relation = load_cached_relation(this) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if not incremental %}
        {%- if existing_relation is not none %}
            {{ adapter.drop_relation(existing_relation) }}
        {%- endif %}
        {% do run_query("drop table if exists " ~ basis_relation) %}
        {% call statement('main') -%}
            create table {{ target_relation }} as
            select * from ({{ sql }}) as mart
            order by {{ g }};
            alter table {{ target_relation }} add primary key ({{ g }});

            create table {{ basis_relation }} as
            {{ gold_lines_sql(grain, inputs) }};
            alter table {{ basis_relation }} add primary key (input, line_key);
            comment on table {{ basis_relation }} is
                {{ medallion_literal('Bookkeeping of ' ~ this.identifier ~ ': per line, the group it counted in at the last build and a fingerprint of the fields the mart reads.') }};
        {%- endcall %}
    {%- else %}
        {#- one build at a time per mart -#}
        {% do run_query("lock table " ~ target_relation ~ " in share row exclusive mode") %}
        {% do run_query(gold_scope_sql(basis_relation, grain, inputs)) %}
        {% call statement('main') -%}
            delete from {{ target_relation }} where ({{ g }}) in (select {{ g }} from gold_scope);

            insert into {{ target_relation }}
            select * from ({{ sql }}) as mart
            order by {{ g }};

            delete from {{ basis_relation }} where ({{ g }}) in (select {{ g }} from gold_scope);

            insert into {{ basis_relation }}
            select * from gold_lines where ({{ g }}) in (select {{ g }} from gold_scope);
        {%- endcall %}
    {%- endif %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
