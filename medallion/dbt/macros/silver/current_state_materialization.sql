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
    {%- set timeline = medallion_timeline(bronze_relation) -%}
    {%- set history_columns = medallion_history_columns(timeline, this) -%}
    {%- set columns = medallion_ordered_columns(history_columns) -%}
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
        {%- set first = {} -%}
        {%- for name in history_columns['first'] %}{% do first.update({name: columns[name]}) %}{% endfor -%}
        {% do run_query(current_state_create_sql(target_relation, key, first, partition_by)) %}
        {% do run_query(medallion_forget_watermark_sql(target_relation)) %}
    {%- endif %}
    {%- set evolve = medallion_evolve_sql(target_relation, adapter.get_columns_in_relation(target_relation),
                                          history_columns) -%}
    {%- if evolve %}{% do run_query(evolve) %}{% endif -%}

    {% do run_query("lock table " ~ target_relation ~ " in share row exclusive mode") %}
    {%- set lo = medallion_watermark(target_relation) -%}
    {%- set hi = medallion_bronze_high(bronze_relation, lo) -%}

    {%- if hi > lo %}
        {%- set events = [] -%}
        {%- for event in medallion_schema_events(timeline, columns) -%}
            {%- if event.lsn > lo and event.lsn <= hi %}{% do events.append(event) %}{% endif -%}
        {%- endfor -%}
        {%- set steps = medallion_steps(events, medallion_epochs(bronze_relation, lo, hi)) -%}
        {%- set position = namespace(after=[lo, 2147483647]) -%}
        {%- for step in steps + [none] -%}
            {%- set before = [step.lsn, step.ordinal] if step else [hi + 1, 0] -%}
            {% do run_query(current_state_stage_sql(target_relation, feed, key, columns, source_root,
                                                    position.after, before)) %}
            {% do current_state_create_partitions(target_relation, partition_by) %}
            {% do run_query(current_state_apply_sql(target_relation, key, columns, source_root)) %}
            {%- if step and step.epoch %}
                {% do run_query(medallion_epoch_stage_sql(feed, step)
                                ~ "drop table if exists medallion_rows; create temporary table medallion_rows "
                                ~ "on commit drop as select * from medallion_epoch;") %}
                {% do current_state_create_partitions(target_relation, partition_by) %}
                {% do run_query(current_state_epoch_sql(target_relation, key, columns, step)) %}
                {%- set position.after = [step.lsn, 2147483647] -%}
            {%- elif step %}
                {% do run_query(current_state_event_sql(target_relation, step)) %}
                {%- set position.after = [step.lsn, step.ordinal] -%}
            {%- endif %}
        {%- endfor -%}
    {%- endif %}
    {% call statement('main') -%}
        {%- if hi > lo %}
        {{ medallion_set_watermark_sql(target_relation, bronze_relation, hi) }};
        {%- elif hi >= 0 %}
        -- nothing new; the horizon may still move (the ingester caught up with an idle source)
        {{ medallion_set_watermark_sql(target_relation, bronze_relation, hi) }};
        {%- else %}
        select 'bronze is empty' as nothing_to_do;
        {%- endif %}
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
