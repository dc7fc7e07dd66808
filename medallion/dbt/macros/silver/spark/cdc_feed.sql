{% macro spark_cdc_feed(bronze, key, columns, lo, hi) %}
{#-
    Spark's typed change feed of one bronze table (PostgreSQL's is ../cdc_feed.sql, same rules):
    one row per change with lo < commit_lsn <= hi, the row's columns typed from bronze's JSON.
    from_json reads every column as a string (JSON numbers and booleans keep their text), and
    spark_typed casts it. An update of the key also yields a D for the old key.
-#}
{%- set fields = [] -%}
{%- for name in columns.keys() %}{% do fields.append(spark_quote(name) ~ ' string') %}{% endfor -%}
{%- set schema = spark_literal(fields | join(', ')) -%}
with changes as (
    select commit_lsn, ordinal, op, commit_ts, source_table,
           from_json(full_row, {{ schema }}) as image,
           from_json(old_row, {{ schema }}) as old_image
    from {{ bronze }}
    where commit_lsn > {{ lo }} and commit_lsn <= {{ hi }}
),

key_moves as (
    -- an update of the key column(s) removes the row under its old key
    select commit_lsn, ordinal, 'D' as op, commit_ts, source_table, old_image as image
    from changes
    where op = 'U'
      and not ({% for k in key %}old_image.{{ spark_quote(k) }} <=> image.{{ spark_quote(k) }}{{ " and " if not loop.last }}{% endfor %})
),

images as (
    select commit_lsn, ordinal, op, commit_ts, source_table, image from changes
    union all
    select commit_lsn, ordinal, op, commit_ts, source_table, image from key_moves
)

select
    commit_lsn,
    ordinal,
    op,
    commit_ts,
    source_table,
    {%- for name, type in columns.items() %}
    {{ spark_typed("image." ~ spark_quote(name), type) }} as {{ spark_quote(name) }}{{ "," if not loop.last }}
    {%- endfor %}
from images
{% endmacro %}
