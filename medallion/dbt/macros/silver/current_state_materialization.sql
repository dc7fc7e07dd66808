{% materialization current_state, adapter='postgres' %}
{#- silver.<t> for a table whose medallion.toml entry sets partition_by (large facts): the rows
    the source holds now, range-partitioned by UTC month of that column, with last_commit_ts
    (when the row's last change committed) and source_table (the relation, e.g. the leaf
    partition, it lives in). Like the history, the model is `select * from {{ source(...) }}`
    and the typed feed is built here. Deletes remove rows; a truncate removes the rows of the
    relation it names (all of them when it names the root). Incremental by default: only keys
    changed by bronze rows past the watermark are recomputed, in one transaction together with
    the new watermark. --full-refresh drops the table and replays bronze from the start.
    config: key, partition_by, source_table, object_prefix. -#}
    {%- set key = config.require('key') -%}
    {%- set partition_by = config.require('partition_by') -%}
    {%- set bronze_relation = medallion_bronze_of(model) -%}
    {%- set columns = medallion_columns(bronze_relation) -%}
    {%- set feed = cdc_feed(bronze_relation, key, columns) -%}
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
        {% do run_query(current_state_create_sql(target_relation, key, columns, partition_by)) %}
        {% do run_query(medallion_forget_watermark_sql(target_relation)) %}
    {%- endif %}

    {% do run_query("lock table " ~ target_relation ~ " in share row exclusive mode") %}
    {%- set lo = medallion_watermark(target_relation) -%}
    {%- set hi = medallion_bronze_high(bronze_relation, lo) -%}

    {%- if hi > lo %}
        {% do run_query(current_state_stage_sql(target_relation, feed, key, columns, source_root, lo, hi)) %}
        {% do current_state_create_partitions(target_relation, partition_by) %}
    {%- endif %}
    {% call statement('main') -%}
        {%- if hi > lo %}
        {{ current_state_apply_sql(target_relation, key, columns, source_root) }}
        {{ medallion_set_watermark_sql(target_relation, bronze_relation, hi) }};
        {%- else %}
        select 'bronze has nothing past the watermark' as nothing_to_do;
        {%- endif %}
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
