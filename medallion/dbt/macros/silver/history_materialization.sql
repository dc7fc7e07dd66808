{% materialization system_versioned, adapter='postgres' %}
{#- Builds a history table from a typed change feed (see history_feed). Incremental by
    default: applies only bronze rows past the model's watermark, in one transaction together
    with the new watermark. --full-refresh drops the table and replays bronze from the start.
    config: key (list of columns), source_table (the captured root as bronze rows name it),
    as_of (the as-of function's name), object_prefix (for constraint and index names). -#}
    {%- set key = config.require('key') -%}
    {%- set bronze_relation = medallion_bronze_of(model) -%}
    {%- set columns = medallion_columns(bronze_relation) -%}
    {%- set source_root = config.require('source_table') -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set existing_relation = load_cached_relation(this) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if existing_relation is not none and (should_full_refresh() or existing_relation.type != 'table') %}
        {{ adapter.drop_relation(existing_relation) }}
        {%- set existing_relation = none -%}
    {%- endif %}
    {%- if existing_relation is none %}
        {% do run_query(system_versioned_create_sql(target_relation, key, columns)) %}
        {% do run_query(system_versioned_exclusion_sql(target_relation, key)) %}
        {% do run_query(medallion_forget_watermark_sql(target_relation)) %}
    {%- endif %}

    {#- one build at a time per table: a second waits here and then sees the first's watermark -#}
    {% do run_query("lock table " ~ target_relation ~ " in share row exclusive mode") %}
    {%- set lo = medallion_watermark(target_relation) -%}
    {%- set hi = medallion_bronze_high(bronze_relation, lo) -%}

    {%- if hi > lo %}
        {% do run_query(system_versioned_stage_sql(target_relation, sql, key, lo, hi)) %}
        {%- set partial_truncates = run_query(
            "select exists (select from medallion_feed where op = 'T' and source_table <> "
            ~ medallion_literal(source_root) ~ ")").columns[0].values()[0] -%}
        {%- if partial_truncates %}
            {% do run_query(system_versioned_seed_tables_sql(sql, key, lo)) %}
        {%- endif %}
    {%- endif %}
    {% call statement('main') -%}
        {%- if hi > lo %}
        {{ system_versioned_apply_sql(target_relation, key, columns, source_root) }}
        {{ medallion_set_watermark_sql(target_relation, bronze_relation, hi) }};
        {%- else %}
        select 'bronze has nothing past the watermark' as nothing_to_do;
        {%- endif %}
    {%- endcall %}
    {% do run_query(system_versioned_as_of_sql(target_relation)) %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
