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
{%- set fields = [] -%}
{%- for name in columns.keys() %}{% do fields.append(spark_quote(name) ~ ' string') %}{% endfor -%}
{%- set schema = spark_literal(fields | join(', ')) -%}
with changes as (
    select commit_lsn, ordinal, op, commit_ts, load_ts, source_table,
           from_json(full_row, {{ schema }}) as image,
           from_json(old_row, {{ schema }}) as old_image
    from {{ bronze }}
    where {{ spark_range(after, before) }}
),

key_moves as (
    -- an update of the key column(s) removes the row under its old key
    select commit_lsn, ordinal, 'D' as op, commit_ts, load_ts, source_table, old_image as image
    from changes
    where op = 'U'
      and not ({% for k in key %}old_image.{{ spark_quote(k) }} <=> image.{{ spark_quote(k) }}{{ " and " if not loop.last }}{% endfor %})
),

images as (
    select commit_lsn, ordinal, op, commit_ts, load_ts, source_table, image from changes
    union all
    select commit_lsn, ordinal, op, commit_ts, load_ts, source_table, image from key_moves
)

select
    commit_lsn,
    ordinal,
    op,
    commit_ts,
    load_ts,
    source_table,
    {%- for name, type in columns.items() %}
    {{ spark_typed("image." ~ spark_quote(name), type) }} as {{ spark_quote(name) }}{{ "," if not loop.last }}
    {%- endfor %}
from images
{% endmacro %}


{% macro spark_apply_stretch(kind, target_relation, bronze_relation, key, columns, source_root, timeline, lo, hi) %}
    {#- Bronze's (lo, hi] onto a history (kind 'history') or a current-state table ('current'), in
        stream order: the changes between schema events and re-syncs as one MERGE per batch,
        then each event or epoch at its own position (the same order PostgreSQL applies them) -#}
    {%- set history = kind == 'history' -%}
    {%- set plan = spark_steps(bronze_relation, spark_schema_events(timeline, columns), lo, hi) -%}
    {%- set batch_rows = spark_batch_rows(bronze_relation, plan, lo, hi) -%}
    {%- set position = namespace(after=[lo, 2147483647], empty=(lo < 0)) -%}
    {%- for step in plan.steps + [none] -%}
        {%- set before = [step.lsn, step.ordinal] if step else [hi + 1, 0] -%}
        {%- if batch_rows[loop.index0] > 0 %}
            {%- set merge = spark_history_merge_sql if history else spark_current_state_merge_sql -%}
            {% do run_query(merge(target_relation, bronze_relation, key, columns, source_root, position.after, before,
                                  spark_truncated(plan.truncates, position.after, before), position.empty)) %}
            {%- set position.empty = false -%}
        {%- endif %}
        {%- if step and step.epoch %}
            {%- set epoch = spark_history_epoch_sql if history else spark_current_state_epoch_sql -%}
            {% do run_query(epoch(target_relation, bronze_relation, key, columns, step)) %}
            {%- set position.after = [step.lsn, 2147483647] -%}
            {%- set position.empty = false -%}
        {%- elif step %}
            {%- set statements = spark_history_event_sql(target_relation, key, columns, step) if history
                                 else [spark_current_state_event_sql(target_relation, step)] -%}
            {%- for statement in statements %}
                {% do run_query(statement) %}
            {%- endfor %}
            {%- set position.after = [step.lsn, step.ordinal] -%}
            {%- set position.empty = false -%}
        {%- endif %}
    {%- endfor -%}
{% endmacro %}
