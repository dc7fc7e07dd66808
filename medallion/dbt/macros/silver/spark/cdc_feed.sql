{% macro spark_range(after, before) -%}
    {#- bronze rows strictly between two stream positions (commit_lsn, ordinal), as PostgreSQL's
        medallion_range; the plain bounds on commit_lsn let Iceberg skip files by their statistics -#}
    commit_lsn >= {{ after[0] }} and commit_lsn <= {{ before[0] }}
    and (commit_lsn > {{ after[0] }} or ordinal > {{ after[1] }})
    and (commit_lsn < {{ before[0] }} or ordinal < {{ before[1] }})
{%- endmacro %}


{% macro spark_cdc_feed(bronze, key, columns, after, before) %}
{#-
    Spark's typed change feed of one bronze table (PostgreSQL's is ../cdc_feed.sql, same rules):
    one row per change strictly between the stream positions after and before ([commit_lsn,
    ordinal]), the row's columns typed from bronze's JSON, load_ts (when the warehouse learned of
    the change) beside commit_ts. from_json reads every column as a string (JSON numbers and
    booleans keep their text), and spark_typed casts it. An update of the key also yields a D
    for the old key.
-#}
{%- set source_of = {} -%}
{%- for source, silver in (config.get('column_names') or {}).items() %}{% do source_of.update({silver: source}) %}{% endfor -%}
{%- set fields = [] -%}
{%- for name in columns.keys() %}{% do fields.append(medallion.spark_quote(source_of.get(name, name)) ~ ' string') %}{% endfor -%}
{%- set schema = medallion.spark_literal(fields | join(', ')) -%}
with changes as (
    select commit_lsn, ordinal, op, commit_ts, load_ts, source_table,
           from_json(full_row, {{ schema }}) as image,
           from_json(old_row, {{ schema }}) as old_image
    from {{ bronze }}
    where {{ medallion.spark_range(after, before) }}
),

key_moves as (
    -- an update of the key column(s) removes the row under its old key
    select commit_lsn, ordinal, 'D' as op, commit_ts, load_ts, source_table, old_image as image
    from changes
    where op = 'U'
      and not ({% for k in key %}old_image.{{ medallion.spark_quote(source_of.get(k, k)) }} <=> image.{{ medallion.spark_quote(source_of.get(k, k)) }}{{ " and " if not loop.last }}{% endfor %})
),

images as (
    select commit_lsn, ordinal, op, commit_ts, load_ts, source_table, image from changes
    union all
    select commit_lsn, ordinal, op, commit_ts, load_ts, source_table, image from key_moves
)

select
    -- the change's own columns under names no source column takes (as ../cdc_feed.sql)
    commit_lsn as _m_lsn,
    ordinal as _m_ordinal,
    op as _m_op,
    commit_ts as _m_ts,
    load_ts as _m_load_ts,
    source_table as _m_source_table,
    {%- for name, type in columns.items() %}
    {{ medallion.spark_typed("image." ~ medallion.spark_quote(source_of.get(name, name)), type) }} as {{ medallion.spark_quote(name) }}{{ "," if not loop.last }}
    {%- endfor %}
from images
{% endmacro %}


{% macro spark_apply_stretch(kind, target_relation, bronze_relation, key, columns, source_root, timeline, lo, hi) %}
    {#- Bronze's (lo, hi] onto a history (kind 'history') or a current-state table ('current'), in
        stream order: the changes between schema events and re-syncs as one MERGE per batch,
        then each event or epoch at its own position (the same order PostgreSQL applies them) -#}
    {%- set history = kind == 'history' -%}
    {%- set plan = medallion.spark_steps(bronze_relation, medallion.medallion_schema_events(timeline, columns), lo, hi) -%}
    {%- set batch_rows = medallion.spark_batch_rows(bronze_relation, plan, lo, hi) -%}
    {%- set position = namespace(after=[lo, 2147483647], empty=(lo < 0)) -%}
    {%- for step in plan.steps + [none] -%}
        {%- set before = [step.lsn, step.ordinal] if step else [hi + 1, 0] -%}
        {%- if batch_rows[loop.index0] > 0 %}
            {%- if history and config.get('declared_key', false) %}
                {% do medallion.spark_check_declared_key(target_relation, bronze_relation, key, columns, source_root, position.after,
                                               before, medallion.spark_truncated(plan.truncates, position.after, before)) %}
            {%- endif %}
            {%- set merge = spark_history_merge_sql if history else spark_current_state_merge_sql -%}
            {% do run_query(merge(target_relation, bronze_relation, key, columns, source_root, position.after, before,
                                  medallion.spark_truncated(plan.truncates, position.after, before), position.empty)) %}
            {%- set position.empty = false -%}
        {%- endif %}
        {%- if step and step.epoch %}
            {%- set epoch = spark_history_epoch_sql if history else spark_current_state_epoch_sql -%}
            {% do run_query(epoch(target_relation, bronze_relation, key, columns, step)) %}
            {%- set position.after = [step.lsn, 2147483647] -%}
            {%- set position.empty = false -%}
        {%- elif step %}
            {%- set statements = medallion.spark_history_event_sql(target_relation, key, columns, step) if history
                                 else [medallion.spark_current_state_event_sql(target_relation, step)] -%}
            {%- for statement in statements %}
                {% do run_query(statement) %}
            {%- endfor %}
            {%- set position.after = [step.lsn, step.ordinal] -%}
            {%- set position.empty = false -%}
        {%- endif %}
    {%- endfor -%}
{% endmacro %}


{% macro spark_build_silver_table(kind) %}
    {#- What the Spark history ('history') and current-state ('current') materializations share:
        the columns over the schema timeline, a rebuild from all of bronze when asked for, when
        the table is not one, when a column's type cannot change in place or when the table is
        left at a snapshot its watermark does not name; new columns added; bronze past the
        watermark applied in stream order; the watermark moved. Returns the table. -#}
    {%- set history = kind == 'history' -%}
    {%- set key = config.require('key') -%}
    {%- set bronze_relation = medallion.medallion_bronze_of(model) -%}
    {%- set timeline = medallion.spark_timeline(bronze_relation) -%}
    {%- set history_columns = medallion.medallion_history_columns(timeline, this) -%}
    {%- set columns = medallion.medallion_ordered_columns(history_columns) -%}
    {%- set source_root = config.require('source_table') -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set existing_relation = load_cached_relation(this) -%}

    {%- set evolve = ([], false) -%}
    {%- set outdated = false -%}
    {%- if existing_relation is not none and existing_relation.type == 'table' -%}
        {%- set existing_columns = adapter.get_columns_in_relation(target_relation) -%}
        {%- set evolve = medallion.spark_evolve(target_relation, existing_columns, history_columns) -%}
        {#- a history from before warehouse time -#}
        {%- set outdated = history and 'sys_known_from' not in (existing_columns | map(attribute='name') | list) -%}
    {%- endif -%}
    {%- if existing_relation is not none and (should_full_refresh() or existing_relation.type != 'table' or evolve[1]
                                             or outdated or medallion.spark_needs_rebuild(target_relation)) %}
        {%- do log("medallion: rebuilding " ~ target_relation ~ " from all of bronze (full refresh "
                   ~ should_full_refresh() ~ ", type " ~ existing_relation.type ~ ", type change " ~ evolve[1] ~ ")") -%}
        {{ adapter.drop_relation(target_relation.incorporate(type=existing_relation.type)) }}
        {%- set existing_relation = none -%}
    {%- endif %}
    {%- if existing_relation is none %}
        {%- set first = {} -%}
        {%- for name in history_columns['first'] %}{% do first.update({name: columns[name]}) %}{% endfor -%}
        {% do run_query(medallion.spark_history_create_sql(target_relation, key, first) if history
                        else medallion.spark_current_state_create_sql(target_relation, key, first, config.require('partition_by'))) %}
        {%- set evolve = medallion.spark_evolve(target_relation, adapter.get_columns_in_relation(target_relation), history_columns) -%}
    {%- endif %}
    {%- for statement in evolve[0] %}{% do run_query(statement) %}{% endfor -%}

    {%- set lo = medallion.spark_watermark(target_relation)[0] -%}
    {%- set hi = medallion.spark_bronze_high(bronze_relation, lo) -%}
    {%- if hi > lo %}
        {% do medallion.spark_apply_stretch(kind, target_relation, bronze_relation, key, columns, source_root, timeline, lo, hi) %}
    {%- endif %}
    {% call statement('main') -%}
        select {{ hi }} as applied_up_to
    {%- endcall %}
    {%- if hi > lo %}
        {% do medallion.spark_set_watermark(target_relation, hi) %}
    {%- endif %}
    {{- return(target_relation) -}}
{% endmacro %}
