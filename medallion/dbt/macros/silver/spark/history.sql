{% materialization system_versioned, adapter='spark' %}
{#- The history of one captured table as an Iceberg table, built by Spark from the lake's
    bronze. The same versions as the PostgreSQL materialization (../history_materialization.sql,
    same rules: one version per source transaction that changed the key, in commit order,
    sys_start the commit time, sys_end the next version's start, the delete's or truncate's
    commit time, or the far future, spark_far_future(), where PostgreSQL says 'infinity').

    One MERGE per batch of bronze rows past the watermark: the current versions the batch ends
    are matched on (key, sys_start) and get their sys_end (or are deleted when a change at the
    same instant replaced them), the versions the batch opens are inserted. Then the watermark
    records the batch's end and the table's new snapshot (spark/lake.sql). --full-refresh, or a
    table left at a snapshot its watermark does not name, rebuilds from all of bronze. -#}
    {%- set key = config.require('key') -%}
    {%- set bronze_relation = medallion_bronze_of(model) -%}
    {%- set columns = spark_bronze_columns(bronze_relation) -%}
    {%- set source_root = config.require('source_table') -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set existing_relation = load_cached_relation(this) -%}

    {{ run_hooks(pre_hooks) }}
    {%- if existing_relation is not none and (should_full_refresh() or existing_relation.type != 'table'
                                             or spark_needs_rebuild(target_relation)) %}
        {{ adapter.drop_relation(existing_relation) }}
        {%- set existing_relation = none -%}
    {%- endif %}
    {%- if existing_relation is none %}
        {% do run_query(spark_history_create_sql(target_relation, key, columns)) %}
    {%- endif %}

    {%- set lo = spark_watermark(target_relation)[0] -%}
    {%- set hi = spark_bronze_high(bronze_relation, lo) -%}
    {% call statement('main') -%}
        {%- if hi > lo %}
        {{ spark_history_merge_sql(target_relation, bronze_relation, key, columns, source_root, lo, hi) }}
        {%- else %}
        select 'bronze has nothing past the watermark' as nothing_to_do
        {%- endif %}
    {%- endcall %}
    {%- if hi > lo %}
        {% do spark_set_watermark(target_relation, hi) %}
    {%- endif %}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{% macro spark_history_create_sql(relation, key, columns) %}
create table {{ relation }} (
    {%- for column, type in columns.items() %}
    {{ spark_quote(column) }} {{ spark_type(type) }}{{ " not null" if column in key }},
    {%- endfor %}
    sys_start timestamp not null,
    sys_end   timestamp not null
) using iceberg
tblproperties ({{ spark_write_properties() }})
{% endmacro %}


{% macro spark_history_merge_sql(relation, bronze, key, columns, source_root, lo, hi) %}
{#- Decides with two small queries whether the batch holds truncates (and of a single partition):
    without them the statement has no truncate join at all. -#}
{%- set feed = spark_cdc_feed(bronze, key, columns, lo, hi) -%}
{%- set counts = run_query("select count(*), count_if(source_table <> " ~ spark_literal(source_root)
                           ~ ") from " ~ bronze ~ " where op = 'T' and commit_lsn > " ~ lo
                           ~ " and commit_lsn <= " ~ hi).rows[0] -%}
{%- set has_truncates = counts[0] > 0 -%}
{%- set partial_truncates = counts[1] > 0 -%}
{%- set keys = spark_column_list(key) -%}
{%- set cols = spark_column_list(columns.keys()) -%}
{%- set far = spark_far_future() -%}
merge into {{ relation }} as t
using (
    with feed as (
        {{ feed }}
    ),

    truncates as (
        select commit_lsn, ordinal, commit_ts, source_table from feed where op = 'T'
    ),

    ranked as (
        select feed.*, row_number() over (partition by {{ keys }}, commit_lsn order by ordinal desc) as change_rank
        from feed
        where op <> 'T'
    ),

    key_changes as (
        -- one change per key and transaction: its last (nobody could see the states in between)
        select commit_lsn, ordinal, op, commit_ts, source_table, {{ cols }}
        from ranked
        where change_rank = 1
    ),

    reopened as (
        -- the current versions this batch may end: of the keys it changes, or all after a truncate
        select {{ cols }}, sys_start
        from {{ relation }}
        where sys_end = {{ far }}
        {%- if not has_truncates %}
          and ({{ keys }}) in (select {{ keys }} from key_changes)
        {%- endif %}
    ),

    seed_tables as (
        -- where each reopened key's row lived before the batch; read only when a truncate names
        -- one partition of a partitioned source (rare)
        {%- if partial_truncates %}
        select {{ keys }}, source_table
        from (
            select {{ keys }}, source_table,
                   row_number() over (partition by {{ keys }} order by commit_lsn desc, ordinal desc) as change_rank
            from ({{ spark_cdc_feed(bronze, key, columns, -1, lo) }}) as before
            where op <> 'T'
        ) as latest
        where change_rank = 1
        {%- else %}
        select {{ keys }}, cast(null as string) as source_table from key_changes where false
        {%- endif %}
    ),

    events as (
        select cast(0 as bigint) as commit_lsn, 0 as ordinal, 'S' as op, reopened.sys_start as commit_ts,
               seed_tables.source_table, {{ spark_column_list(columns.keys(), 'reopened.') }}
        from reopened
        left join seed_tables on {{ spark_keys_equal(key, 'seed_tables', 'reopened') }}
        union all
        select commit_lsn, ordinal, op, commit_ts, source_table, {{ cols }}
        from key_changes
    ),

    successors as (
        select
            events.*,
            lead(commit_lsn) over by_key as next_lsn,
            lead(ordinal) over by_key as next_ordinal,
            lead(commit_ts) over by_key as next_ts
        from events
        window by_key as (partition by {{ keys }} order by commit_lsn, ordinal)
    ),

    {%- if has_truncates %}
    ended as (
        -- the first truncate after each event that names the relation its row lives in
        select s.*, tr.commit_lsn as t_lsn, tr.ordinal as t_ordinal, tr.commit_ts as t_ts,
               row_number() over (partition by {{ spark_column_list(key, 's.') }}, s.commit_lsn, s.ordinal
                                  order by tr.commit_lsn, tr.ordinal) as truncate_rank
        from successors as s
        left join truncates as tr
          on (tr.commit_lsn > s.commit_lsn or (tr.commit_lsn = s.commit_lsn and tr.ordinal > s.ordinal))
         and (tr.source_table = {{ spark_literal(source_root) }} or tr.source_table = s.source_table)
    ),
    {%- else %}
    ended as (
        select successors.*, cast(null as bigint) as t_lsn, cast(null as int) as t_ordinal,
               cast(null as timestamp) as t_ts, 1 as truncate_rank
        from successors
    ),
    {%- endif %}

    versions as (
        select
            {{ cols }},
            commit_ts as sys_start,
            case
                when t_lsn is not null
                     and (next_lsn is null or t_lsn < next_lsn or (t_lsn = next_lsn and t_ordinal < next_ordinal))
                    then t_ts
                else coalesce(next_ts, {{ far }})
            end as sys_end,
            op = 'S' as reopened
        from ended
        where truncate_rank = 1 and op <> 'D'
    )

    -- keep: a version replaced at the very instant it started was never visible
    select versions.*, sys_start < sys_end as keep from versions
) as s
on {{ spark_keys_equal(key, 't', 's') }} and t.sys_start = s.sys_start and s.reopened and t.sys_end = {{ far }}
when matched and not s.keep then delete
when matched then update set t.sys_end = s.sys_end
when not matched and s.keep then insert ({{ cols }}, sys_start, sys_end)
    values ({{ spark_column_list(columns.keys(), 's.') }}, s.sys_start, s.sys_end)
{% endmacro %}
