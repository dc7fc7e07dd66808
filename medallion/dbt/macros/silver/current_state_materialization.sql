{% macro postgres__medallion_build_current_state() %}
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
    {%- set bronze_relation = medallion.medallion_bronze_of(model) -%}
    {%- set timeline = medallion.medallion_timeline(bronze_relation) -%}
    {%- set history_columns = medallion.medallion_history_columns(timeline, this) -%}
    {%- set columns = medallion.medallion_ordered_columns(history_columns) -%}
    {%- set feed = medallion.cdc_feed(bronze_relation, key, columns) -%}
    {%- set source_root = config.require('source_table') -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set existing_relation = load_cached_relation(this) -%}

    {%- if existing_relation is not none and (should_full_refresh() or existing_relation.type != 'table') %}
        {{ adapter.drop_relation(existing_relation) }}
        {%- set existing_relation = none -%}
    {%- endif %}
    {%- if existing_relation is none %}
        {%- set first = {} -%}
        {%- for name in history_columns['first'] %}{% do first.update({name: columns[name]}) %}{% endfor -%}
        {% do run_query(medallion.current_state_create_sql(target_relation, key, first, partition_by)) %}
        {% do run_query(medallion.medallion_forget_watermark_sql(target_relation)) %}
    {%- endif %}
    {%- set evolve = medallion.medallion_evolve_sql(target_relation, adapter.get_columns_in_relation(target_relation),
                                          history_columns) -%}
    {%- if evolve %}{% do run_query(evolve) %}{% endif -%}

    {% do run_query("lock table " ~ target_relation ~ " in share row exclusive mode") %}
    {%- set lo = medallion.medallion_watermark(target_relation) -%}
    {%- set hi = medallion.medallion_bronze_high(bronze_relation, lo) -%}

    {%- if hi > lo %}
        {%- set events = [] -%}
        {%- for event in medallion.medallion_schema_events(timeline, columns) -%}
            {%- if event.lsn > lo and event.lsn <= hi %}{% do events.append(event) %}{% endif -%}
        {%- endfor -%}
        {%- set steps = medallion.medallion_steps(events, medallion.medallion_epochs(bronze_relation, lo, hi)) -%}
        {%- set position = namespace(after=[lo, 2147483647]) -%}
        {%- for step in steps + [none] -%}
            {%- set before = [step.lsn, step.ordinal] if step else [hi + 1, 0] -%}
            {% do run_query(medallion.current_state_stage_sql(target_relation, feed, key, columns, source_root,
                                                    position.after, before)) %}
            {% do run_query(medallion.current_state_partitions_sql(target_relation, partition_by)) %}
            {% do run_query(medallion.current_state_apply_sql(target_relation, key, columns, source_root)) %}
            {%- if step and step.epoch %}
                {% do run_query(medallion.medallion_epoch_stage_sql(feed, step)
                                ~ "drop table if exists medallion_rows; create temporary table medallion_rows "
                                ~ "on commit drop as select * from medallion_epoch;") %}
                {% do run_query(medallion.current_state_partitions_sql(target_relation, partition_by)) %}
                {% do run_query(medallion.current_state_epoch_sql(target_relation, key, columns, step)) %}
                {%- set position.after = [step.lsn, 2147483647] -%}
            {%- elif step %}
                {% do run_query(medallion.current_state_event_sql(target_relation, step)) %}
                {%- set position.after = [step.lsn, step.ordinal] -%}
            {%- endif %}
        {%- endfor -%}
    {%- endif %}
    {%- if hi > lo %}
        {#- PostgreSQL's autovacuum never analyzes a partitioned table itself, only its partitions:
            without the parent's statistics a join of the facts is misestimated ~1000x -#}
        {% do run_query("analyze " ~ target_relation) %}
    {%- endif %}
    {% call statement('main') -%}
        {%- if hi > lo %}
        {{ medallion.medallion_set_watermark_sql(target_relation, bronze_relation, hi) }};
        {%- elif hi >= 0 %}
        -- nothing new; the horizon may still move (the ingester caught up with an idle source)
        {{ medallion.medallion_set_watermark_sql(target_relation, bronze_relation, hi) }};
        {%- else %}
        select 'bronze is empty' as nothing_to_do;
        {%- endif %}
    {%- endcall %}
    {#- the next batch's statements, for `medallion run --follow` (follow.sql) -#}
    {%- set follow = {'lo': '__lo__', 'hi': '__hi__'} -%}
    {% do medallion.medallion_store_follow_step(target_relation, 1,
        lock_sql="lock table " ~ target_relation ~ " in share row exclusive mode",
        high_sql=medallion.medallion_bronze_high_sql(bronze_relation, follow.lo),
        needs_build_sql=medallion.medallion_needs_build_sql(bronze_relation, follow.lo, follow.hi),
        step_sql=medallion.current_state_stage_sql(target_relation, feed, key, columns, source_root,
                                         [follow.lo, 2147483647], [follow.hi ~ ' + 1', 0])
                 ~ medallion.current_state_partitions_sql(target_relation, partition_by)
                 ~ medallion.current_state_apply_sql(target_relation, key, columns, source_root)
                 ~ medallion.medallion_set_watermark_sql(target_relation, bronze_relation, follow.hi) ~ ';',
        idle_sql=medallion.medallion_set_watermark_sql(target_relation, bronze_relation, follow.hi)) %}

    {{ return(target_relation) }}
{% endmacro %}
