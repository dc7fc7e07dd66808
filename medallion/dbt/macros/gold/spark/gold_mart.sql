{#-
    Incremental gold marts on Spark: the same bookkeeping as PostgreSQL's gold_mart
    (../gold_mart.sql): <mart>__basis holds, per line, the group it counted in and a fingerprint
    of the fields the mart reads; a build recomputes the old and the new group of every line
    that appeared, disappeared, moved or changed. Differences: the fingerprint is md5 of the
    fields as JSON; the lines and the scope are cached temporary views named after the mart (so
    models built in parallel on one session do not meet); the mart's SQL computes every group
    (a scope filter inside it, a semi join over views of views, was 10x slower on Spark than the
    whole mart) and one MERGE writes only the touched groups; the basis is then overwritten with
    the current lines (which is what it holds after any build); the mart's properties record its snapshot, and a mart left at another
    snapshot (a crash between the two writes) is rebuilt whole.
-#}

{% macro spark__gold_in_scope() %}
    {#- Spark computes every group and the MERGE writes only the touched ones (see above) -#}
    true
{% endmacro %}


{% macro spark__gold_input(lines) %}
    {#- the lines model itself: Spark's basis keeps fingerprints, not the lines -#}
    {{- return(ref(lines)) -}}
{% endmacro %}


{% macro spark_gold_temp(relation, what) -%}
    {{ medallion.spark_quote('gold_' ~ what ~ '__' ~ relation.identifier) }}
{%- endmacro %}


{% macro spark_gold_lines_sql(grain, inputs) %}
    {%- for input in inputs %}
    select
        cast({{ loop.index }} as smallint) as input,
        cast({{ medallion.spark_quote(input['key']) }} as bigint) as line_key,
        {{ medallion.spark_column_list(grain) }},
        md5(to_json(named_struct(
            {%- for column in grain + input['fields'] %}
            {{ medallion.spark_literal(column) }}, {{ medallion.spark_quote(column) }}{{ "," if not loop.last }}
            {%- endfor %}))) as fp
    from {{ ref(input['lines']) }}
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
{% endmacro %}


{% macro spark_gold_scope_sql(basis, grain, inputs) %}
{%- set old = [] -%}
{%- for column in grain %}{% do old.append('old_' ~ column) %}{% endfor -%}
with differences as (
    -- lines that appeared, disappeared, or changed group or a field the mart reads
    select
        {{ medallion.spark_column_list(grain, 'c.') }},
        {%- for column in grain %}
        b.{{ medallion.spark_quote(column) }} as {{ medallion.spark_quote('old_' ~ column) }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ medallion.spark_gold_temp(this, 'lines') }} as c
    full join {{ basis }} as b on b.input = c.input and b.line_key = c.line_key
    where not (c.fp <=> b.fp)
)

-- the group each such line is in now, and the one it counted in at the last build
select {{ medallion.spark_column_list(grain) }} from differences where {{ medallion.spark_quote(grain[0]) }} is not null
union
select {{ medallion.spark_column_list(old) }} from differences where {{ medallion.spark_quote(old[0]) }} is not null
{% endmacro %}


{% materialization gold_mart, adapter='spark' %}
    {#- a plain-SQL mart (no inputs): Spark computes it in full at every build (the incremental
        plan of plain_mart.sql is PostgreSQL's) -#}
    {%- if config.get('inputs') is none -%}
        {%- set target_relation = this.incorporate(type='table') -%}
        {{ run_hooks(pre_hooks) }}
        {% call statement('main') -%}
            create or replace table {{ target_relation }} using iceberg tblproperties ({{ medallion.spark_write_properties() }}) as
            select * from ({{ sql }}) as mart
        {%- endcall %}
        {% do medallion.spark_set_watermark(target_relation, -1) %}
        {{ run_hooks(post_hooks) }}
        {{ return({'relations': [target_relation]}) }}
    {%- endif -%}
    {%- set grain = config.require('grain') -%}
    {%- set inputs = config.require('inputs') -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set basis_relation = medallion.gold_basis_relation(this) -%}
    {%- set incremental = medallion.gold_mart_is_incremental() and not medallion.spark_needs_rebuild(target_relation) -%}
    {%- set lines = medallion.spark_gold_temp(this, 'lines') -%}
    {%- set scope = medallion.spark_gold_temp(this, 'scope') -%}

    {{ run_hooks(pre_hooks) }}
    {%- if not incremental %}
        {#- the basis goes first: a crash before the new one is written leaves none, so the next
            build is a full one again -#}
        {% do run_query("drop table if exists " ~ basis_relation) %}
        {% call statement('main') -%}
            create or replace table {{ target_relation }} using iceberg tblproperties ({{ medallion.spark_write_properties() }}) as
            select * from ({{ sql }}) as mart
        {%- endcall %}
        {% do run_query("create table " ~ basis_relation ~ " using iceberg tblproperties (" ~ medallion.spark_write_properties() ~ ") as " ~ medallion.spark_gold_lines_sql(grain, inputs)) %}
    {%- else %}
        {% do run_query("cache table " ~ lines ~ " as " ~ medallion.spark_gold_lines_sql(grain, inputs)) %}
        {% do run_query("cache table " ~ scope ~ " as " ~ medallion.spark_gold_scope_sql(basis_relation, grain, inputs)) %}
        {%- set columns = adapter.get_columns_in_relation(target_relation) | map(attribute='name') | list -%}
        {%- set values = columns | reject('in', grain) | list -%}
        {% call statement('main') -%}
            merge into {{ target_relation }} as t
            using (
                select {{ medallion.spark_column_list(grain, 'scope.') }},
                       {%- for column in values %} mart.{{ medallion.spark_quote(column) }},{% endfor %}
                       mart.{{ medallion.spark_quote(grain[0]) }} is null as gone
                from {{ scope }} as scope
                left join ({{ sql }}) as mart on {{ medallion.spark_keys_equal(grain, 'mart', 'scope') }}
            ) as s
            on {{ medallion.spark_keys_equal(grain, 't', 's') }}
            when matched and s.gone then delete
            when matched then update set {% for column in values %}t.{{ medallion.spark_quote(column) }} = s.{{ medallion.spark_quote(column) }}{{ ", " if not loop.last }}{% endfor %}
            when not matched and not s.gone then insert ({{ medallion.spark_column_list(columns) }})
                values ({{ medallion.spark_column_list(columns, 's.') }})
        {%- endcall %}
        {#- after this build every line is counted where it is now: the basis is the current lines -#}
        {% do run_query("insert overwrite " ~ basis_relation ~ " select * from " ~ lines) %}
        {% do run_query("uncache table " ~ scope) %}
        {% do run_query("uncache table " ~ lines) %}
        {% do run_query("drop view if exists " ~ scope) %}
        {% do run_query("drop view if exists " ~ lines) %}
    {%- endif %}
    {% do medallion.spark_set_watermark(target_relation, -1) %}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
