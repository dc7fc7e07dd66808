{% macro spark__medallion_build_current_view() %}
{#- silver.<t> on Spark: a view of the current versions of the model's history (every source
    column and sys_start where sys_end is the far future), as on PostgreSQL. An Iceberg view in
    the lake's catalog: `create or replace view` keeps what depends on it. -#}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set history = ref(model.refs[0]['name']) -%}
    {%- set columns = adapter.get_columns_in_relation(history) | map(attribute='name')
                      | reject('in', ['sys_end', 'sys_known_from', 'sys_known_to']) | list -%}
    {% call statement('main') -%}
        create or replace view {{ target_relation }} as
        select {{ medallion.spark_column_list(columns) }}
        from {{ history }}
        where sys_end = {{ medallion.spark_far_future() }}
    {%- endcall %}
    {{ return(target_relation) }}
{% endmacro %}


{% macro spark__medallion_build_current_state() %}
{#- silver.<t> with partition_by on Spark: the rows the source holds now, an Iceberg table
    partitioned by month of that column (hidden partitioning: months(col)), with last_commit_ts
    and source_table, as on PostgreSQL (../current_state_materialization.sql). One MERGE per
    batch: the keys the batch changed get their new row or are deleted; when the batch truncates,
    the rows of the truncated relations that the batch did not change go too. Schema events and
    re-syncs apply between the batches around them (schema_evolution.sql). -#}
    {{ return(medallion.spark_build_silver_table('current')) }}
{% endmacro %}


{% macro spark_current_state_create_sql(relation, key, columns, partition_by) %}
create table {{ relation }} (
    {%- for column, type in columns.items() %}
    {{ medallion.spark_quote(column) }} {{ medallion.spark_type(type) }}{{ " not null" if column in key or column == partition_by }},
    {%- endfor %}
    last_commit_ts timestamp not null,
    source_table   string    not null
) using iceberg
partitioned by (months({{ medallion.spark_quote(partition_by) }}))
tblproperties ({{ medallion.spark_write_properties() }})
{% endmacro %}


{% macro spark_current_state_merge_sql(relation, bronze, key, columns, source_root, after, before, truncated,
                                       empty=false) %}
{#- truncated: the source tables the batch truncates (spark_truncated); empty: the table has no
    rows yet, and a plain INSERT of the surviving rows does what the MERGE would -#}
{%- set keys = medallion.spark_column_list(key) -%}
{%- set cols = medallion.spark_column_list(columns.keys()) -%}
{%- if empty %}
insert into {{ relation }} ({{ cols }}, last_commit_ts, source_table)
select {{ cols }}, _m_last_commit_ts, _m_source_table
from (
{%- else %}
merge into {{ relation }} as t
using (
{%- endif %}
    with feed as (
        {{ medallion.spark_cdc_feed(bronze, key, columns, after, before) }}
    ),

    truncates as (
        select _m_lsn, _m_ordinal, _m_source_table from feed where _m_op = 'T'
    ),

    ranked as (
        select feed.*, row_number() over (partition by {{ keys }} order by _m_lsn desc, _m_ordinal desc) as _m_change_rank
        from feed
        where _m_op not in ('T', 'E')
    ),

    latest as (
        select * from ranked where _m_change_rank = 1
    ),

    truncated_after as (
        -- a truncate of its table (or of its partition) came after the key's last change
        select {{ medallion.spark_column_list(key, 'latest.') }}
        from latest
        left semi join truncates as tr
          on (tr._m_lsn > latest._m_lsn or (tr._m_lsn = latest._m_lsn and tr._m_ordinal > latest._m_ordinal))
         and (tr._m_source_table = {{ medallion.spark_literal(source_root) }} or tr._m_source_table = latest._m_source_table)
    ),

    final as (
        select {{ medallion.spark_column_list(columns.keys(), 'latest.') }}, latest._m_ts as _m_last_commit_ts, latest._m_source_table,
               latest._m_op <> 'D' and gone.{{ medallion.spark_quote(key[0]) }} is null as _m_survives
        from latest
        left join truncated_after as gone on {{ medallion.spark_keys_equal(key, 'gone', 'latest') }}
    )

    select * from final
{%- if empty %}
) as s
where _m_survives
{%- else %}
) as s
on {{ medallion.spark_keys_equal(key, 't', 's') }}
when matched and not s._m_survives then delete
when matched then update set {% for c in columns.keys() %}t.{{ medallion.spark_quote(c) }} = s.{{ medallion.spark_quote(c) }}, {% endfor %}t.last_commit_ts = s._m_last_commit_ts, t.source_table = s._m_source_table
when not matched and s._m_survives then insert ({{ cols }}, last_commit_ts, source_table)
    values ({{ medallion.spark_column_list(columns.keys(), 's.') }}, s._m_last_commit_ts, s._m_source_table)
{%- if truncated %}
when not matched by source
    {%- if source_root not in truncated %} and t.source_table in ({% for name in truncated %}{{ medallion.spark_literal(name) }}{{ ", " if not loop.last }}{% endfor %}){% endif %}
    then delete
{%- endif %}
{%- endif %}
{% endmacro %}
