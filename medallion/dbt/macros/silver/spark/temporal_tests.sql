-- Spark's generic test of history tables (PostgreSQL's are ../temporal_tests.sql): Iceberg has
-- no constraints, so this test is the only guard of the history's shape on Spark.

{% test spark_valid_history(model, key) %}
{#- Per key: every version is a non-empty [sys_start, sys_end), ends before the next one starts,
    and at most one is current (sys_end is the far future). One scan of the history table. -#}
{%- set key = [key] if key is string else key -%}
with versions as (
    select
        {{ medallion.spark_column_list(key) }},
        sys_start,
        sys_end,
        lead(sys_start) over (partition by {{ medallion.spark_column_list(key) }} order by sys_start) as _m_next_start,
        sum(case when sys_end = {{ medallion.spark_far_future() }} then 1 else 0 end)
            over (partition by {{ medallion.spark_column_list(key) }}) as _m_current_versions
    from {{ model }}
)

select * from versions
where sys_start >= sys_end or sys_end > _m_next_start or _m_current_versions > 1
{% endtest %}
