{% macro current_rows(history) %}
{#- The current rows of a history: every source column and sys_start (when the current version
    began), from the versions with sys_end = 'infinity'. -#}
{%- set columns = adapter.get_columns_in_relation(history) | map(attribute='name')
                  | reject('in', ['sys_end', 'sys_known_from', 'sys_known_to']) | list -%}
select {{ medallion.medallion_column_list(columns) }}
from {{ history }}
where sys_end = 'infinity'
{%- endmacro %}


{% macro current_state_create_sql(relation, key, columns, partition_by) %}
{%- set name = config.get('object_prefix') or relation.identifier -%}
create table {{ relation }} (
    {%- for column, type in columns.items() %}
    {{ medallion.medallion_quote(column) }} {{ type }}{{ " not null" if column in key or column == partition_by }},
    {%- endfor %}
    last_commit_ts timestamptz not null,
    source_table   text        not null,
    -- a partitioned table's unique keys must include the partition column
    constraint {{ medallion.medallion_quote(name ~ '_pkey') }}
        primary key ({{ medallion.medallion_column_list(key) }}{{ ", " ~ medallion.medallion_quote(partition_by) if partition_by not in key }})
) partition by range ({{ medallion.medallion_quote(partition_by) }});
{% endmacro %}


{% macro current_state_stage_sql(relation, feed_sql, key, columns, source_root, after, before) %}
{%- set keys = medallion.medallion_column_list(key) -%}
drop table if exists medallion_feed, medallion_rows;
create temporary table medallion_feed on commit drop as
select * from ({{ feed_sql }}) as feed
where {{ medallion.medallion_range(after, before) }};
analyze medallion_feed;

create temporary table medallion_rows on commit drop as
with truncates as materialized (
    -- few or none: looked up once per changed key
    select _m_lsn, _m_ordinal, _m_source_table from medallion_feed where _m_op = 'T'
),

latest as (
    select distinct on ({{ keys }}) *
    from medallion_feed
    where _m_op <> 'T'
    order by {{ keys }}, _m_lsn desc, _m_ordinal desc
),

final as (
    -- rows that exist after this batch: not deleted, not truncated later in the batch
    select {{ medallion.medallion_column_list(columns.keys(), 'latest.') }}, latest._m_ts as _m_last_commit_ts,
           latest._m_source_table
    from latest
    where latest._m_op <> 'D'
      and not exists (
          select from truncates as t
          where (t._m_lsn, t._m_ordinal) > (latest._m_lsn, latest._m_ordinal)
            and t._m_source_table in (latest._m_source_table, {{ medallion.medallion_literal(source_root) }}))
)

select * from final;
analyze medallion_rows;
{% endmacro %}


{% macro current_state_partitions_sql(relation, partition_by) %}
{#- One partition per UTC month that the staged rows (medallion_rows) need, named
    <table>_pYYYY_MM: created by the statement itself, so a stored follow step can run it too. -#}
{%- set prefix = (config.get('object_prefix') or relation.identifier) ~ '_p' -%}
do $partitions$
declare
    month timestamp;
begin
    for month in
        select distinct date_trunc('month', {{ medallion.medallion_quote(partition_by) }} at time zone 'UTC')
        from medallion_rows
        order by 1
    loop
        execute format('create table if not exists %I.%I partition of %s for values from (%L) to (%L)',
                       {{ medallion.medallion_literal(relation.schema) }}, {{ medallion.medallion_literal(prefix) }} || to_char(month, 'YYYY_MM'),
                       {{ medallion.medallion_literal(relation | string) }},
                       to_char(month, 'YYYY-MM-DD') || ' 00:00:00+00',
                       to_char(month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
    end loop;
end
$partitions$;
{% endmacro %}


{% macro current_state_apply_sql(relation, key, columns, source_root) %}
{%- set keys = medallion.medallion_column_list(key) -%}
{%- set cols = medallion.medallion_column_list(columns.keys()) -%}
-- few rows, estimates that can cross jit_above_cost: compiling costs more than the work
set local jit = off;
-- the rows this batch changes or deletes (their new state, if any, is in medallion_rows)
delete from {{ relation }} as current_row
using (select distinct {{ keys }} from medallion_feed where _m_op <> 'T') as changed
where {% for k in key %}current_row.{{ medallion.medallion_quote(k) }} = changed.{{ medallion.medallion_quote(k) }}{{ " and " if not loop.last }}{% endfor %};

-- the rows of every relation this batch truncates (all of them for the partitioned root); the
-- leading exists is evaluated once, so a batch without a truncate reads none of the table
-- (with an OR of the two cases every batch scanned every partition)
delete from {{ relation }}
where exists (select from medallion_feed where _m_op = 'T' and _m_source_table = {{ medallion.medallion_literal(source_root) }});
delete from {{ relation }}
where exists (select from medallion_feed where _m_op = 'T')
  and source_table in (select _m_source_table from medallion_feed where _m_op = 'T');

insert into {{ relation }} ({{ cols }}, last_commit_ts, source_table)
select {{ cols }}, _m_last_commit_ts, _m_source_table from medallion_rows
order by {{ keys }};

-- partitions exist while data needs them: a month emptied by deletes or truncates goes, so an
-- incremental build leaves the same tables as a full refresh of the same bronze
do $drop_empty$
declare
    part regclass;
    has_rows boolean;
begin
    for part in
        select inhrelid::regclass from pg_inherits
        where inhparent = {{ medallion.medallion_literal(relation.include(database=False)) }}::regclass
    loop
        execute format('select exists (select from %s)', part) into has_rows;
        if not has_rows then
            execute format('drop table %s', part);
        end if;
    end loop;
end
$drop_empty$;
{% endmacro %}


{% macro postgres__medallion_build_current_view() %}
{#- silver.<t>: a view of the current versions of the model's history, which the model names:
    `select * from {{ ref('dim_customer_hist') }}` (statically parsed). The view selects every
    source column and sys_start where sys_end = 'infinity'. One statement per build: `create or
    replace view` keeps the objects that depend on the view (gold's line views, users' own
    views); only when the columns changed in a way it cannot follow is the view dropped and
    created again. -#}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set history = model.refs[0] -%}
    {%- set sql = medallion.current_rows(ref(history['name'])) -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- if existing_relation is not none and existing_relation.type != 'view' %}
        {{ adapter.drop_relation(existing_relation) }}
    {%- endif %}
    {% call statement('main') -%}
        do $current_view$
        begin
            execute {{ medallion.medallion_dollar_quoted('create or replace view ' ~ target_relation ~ ' as ' ~ sql) }};
        exception when invalid_table_definition or feature_not_supported or datatype_mismatch then
            execute {{ medallion.medallion_literal('drop view if exists ' ~ target_relation ~ ' cascade') }};
            execute {{ medallion.medallion_dollar_quoted('create view ' ~ target_relation ~ ' as ' ~ sql) }};
        end
        $current_view$
    {%- endcall %}
    {{ return(target_relation) }}
{% endmacro %}


{% macro medallion_dollar_quoted(text) -%}
    {#- text as a dollar-quoted literal whose tag cannot occur in it -#}
    {%- set tag = '$medallion_' ~ local_md5(text)[:8] ~ '$' -%}
    {{ tag }}{{ text }}{{ tag }}
{%- endmacro %}
