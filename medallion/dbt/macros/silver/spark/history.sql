{% materialization system_versioned, adapter='spark' %}
{#- The history of one captured table as an Iceberg table, built by Spark from the lake's
    bronze: the same versions, value for value, as the PostgreSQL materialization
    (../history_materialization.sql, same rules), with the far future, spark_far_future(), where
    PostgreSQL says 'infinity':
    - one version per source transaction that changed the key, in commit order (commit_lsn,
      ordinal); sys_start = max(commit_ts, previous start + 1 microsecond), sys_end = the next
      version's start, the delete's or truncate's commit time, or the far future;
    - sys_known_from/sys_known_to: bronze's load times of the change that began the version and
      of the one that ended it (warehouse time);
    - every column the table ever had (schema_evolution.sql), schema events applied at their
      DDL's commit time and re-syncs (E rows) at theirs, between the batches around them.

    One MERGE per batch of bronze rows between two steps: the current versions the batch ends
    are matched on (key, sys_start) and get their sys_end (or are deleted when a change in the
    same transaction truncated them), the versions the batch opens are inserted. Then the
    watermark records the batch's end and the table's new snapshot (spark/lake.sql).
    --full-refresh, or a table left at a snapshot its watermark does not name, rebuilds from all
    of bronze. -#}
    {{ run_hooks(pre_hooks) }}
    {%- set target_relation = spark_build_silver_table('history') -%}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{% macro spark_history_create_sql(relation, key, columns) %}
create table {{ relation }} (
    {%- for column, type in columns.items() %}
    {{ spark_quote(column) }} {{ spark_type(type) }}{{ " not null" if column in key }},
    {%- endfor %}
    sys_start      timestamp not null,  -- source time: valid from (commit time)
    sys_end        timestamp not null,  -- ... until (exclusive); the far future while current
    sys_known_from timestamp not null,  -- warehouse time: loaded into bronze
    sys_known_to   timestamp not null   -- ... until its end was loaded; the far future while current
) using iceberg
tblproperties ({{ spark_write_properties() }})
{% endmacro %}


{% macro spark_history_merge_sql(relation, bronze, key, columns, source_root, after, before, truncated, empty=false) %}
{#- The batch of bronze rows strictly between after and before. truncated: the source tables the
    batch truncates (spark_truncated); without any, the statement has no truncate join at all,
    and the seed tables are read only when a truncate names one partition. empty: the table has
    no rows yet (its first batch), so nothing is reopened and a plain INSERT of the versions
    does what the MERGE would, in one Spark job instead of a join and a rewrite. -#}
{%- set feed = spark_cdc_feed(bronze, key, columns, after, before) -%}
{%- set has_truncates = truncated | length > 0 -%}
{%- set partial_truncates = truncated | reject('equalto', source_root) | list | length > 0 -%}
{%- set keys = spark_column_list(key) -%}
{%- set cols = spark_column_list(columns.keys()) -%}
{%- set far = spark_far_future() -%}
{%- if empty %}
insert into {{ relation }} ({{ cols }}, sys_start, sys_end, sys_known_from, sys_known_to)
select {{ cols }}, sys_start, sys_end, sys_known_from, sys_known_to
from (
{%- else %}
merge into {{ relation }} as t
using (
{%- endif %}
    with feed as (
        {{ feed }}
    ),

    truncates as (
        select commit_lsn, ordinal, commit_ts, load_ts, source_table from feed where op = 'T'
    ),

    ranked as (
        select feed.*, row_number() over (partition by {{ keys }}, commit_lsn order by ordinal desc) as change_rank
        from feed
        where op not in ('T', 'E')
    ),

    key_changes as (
        -- one change per key and transaction: its last (nobody could see the states in between)
        select commit_lsn, ordinal, op, commit_ts, load_ts, source_table, {{ cols }}
        from ranked
        where change_rank = 1
    ),

    reopened as (
        -- the current versions this batch may end: of the keys it changes, or all after a truncate
        select {{ cols }}, sys_start, sys_known_from
        from {{ relation }}
        where sys_end = {{ far }}
        {%- if empty %} and false{% endif %}
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
            from ({{ spark_cdc_feed(bronze, key, columns, [-1, 0], [after[0], after[1] + 1]) }}) as earlier
            where op not in ('T', 'E')
        ) as latest
        where change_rank = 1
        {%- else %}
        select {{ keys }}, cast(null as string) as source_table from key_changes where false
        {%- endif %}
    ),

    events as (
        select cast(0 as bigint) as commit_lsn, 0 as ordinal, 'S' as op, reopened.sys_start as commit_ts,
               reopened.sys_known_from as load_ts, seed_tables.source_table,
               {{ spark_column_list(columns.keys(), 'reopened.') }}
        from reopened
        left join seed_tables on {{ spark_keys_equal(key, 'seed_tables', 'reopened') }}
        union all
        select commit_lsn, ordinal, op, commit_ts, load_ts, source_table, {{ cols }}
        from key_changes
    ),

    timed as (
        -- a key's versions start strictly later than the one before, in commit order, even when
        -- the source's clock stepped back: max(commit_ts, previous start + 1 microsecond), a
        -- running max of (commit_ts - n microseconds) + n microseconds, in integer microseconds
        select
            numbered.*,
            timestamp_micros(max(unix_micros(numbered.commit_ts) - numbered.n) over (
                partition by {{ spark_column_list(key, 'numbered.') }} order by numbered.commit_lsn, numbered.ordinal
                rows between unbounded preceding and current row) + numbered.n) as effective_ts
        from (
            select events.*, row_number() over (partition by {{ keys }} order by commit_lsn, ordinal) as n
            from events
        ) as numbered
    ),

    successors as (
        select
            timed.*,
            lead(commit_lsn) over by_key as next_lsn,
            lead(ordinal) over by_key as next_ordinal,
            lead(effective_ts) over by_key as next_ts,
            lead(load_ts) over by_key as next_load_ts
        from timed
        window by_key as (partition by {{ keys }} order by commit_lsn, ordinal)
    ),

    {%- if has_truncates %}
    ended as (
        -- the first truncate after each event that names the relation its row lives in
        select s.*, tr.commit_lsn as t_lsn, tr.ordinal as t_ordinal, tr.commit_ts as t_ts, tr.load_ts as t_load_ts,
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
               cast(null as timestamp) as t_ts, cast(null as timestamp) as t_load_ts, 1 as truncate_rank
        from successors
    ),
    {%- endif %}

    versions as (
        -- a version ends at whichever comes first: the key's next change or a truncate of the
        -- relation its row lives in; never before it starts, whatever the clocks say
        select
            {{ cols }},
            effective_ts as sys_start,
            case
                when t_lsn is not null
                     and (next_lsn is null or t_lsn < next_lsn or (t_lsn = next_lsn and t_ordinal < next_ordinal))
                    then case
                        -- inserted and truncated in one transaction: never visible (dropped below)
                        when t_lsn = commit_lsn then effective_ts
                        else least(greatest(t_ts, {{ spark_plus_micro('effective_ts') }}), coalesce(next_ts, {{ far }}))
                    end
                else coalesce(next_ts, {{ far }})
            end as sys_end,
            load_ts as sys_known_from,
            case
                when t_lsn is not null
                     and (next_lsn is null or t_lsn < next_lsn or (t_lsn = next_lsn and t_ordinal < next_ordinal))
                    then t_load_ts
                else coalesce(next_load_ts, {{ far }})
            end as sys_known_to,
            op = 'S' as reopened
        from ended
        where truncate_rank = 1 and op <> 'D'
    )

    -- keep: a version replaced at the very instant it started was never visible
    select versions.*, sys_start < sys_end as keep from versions
{%- if empty %}
) as s
where keep
{%- else %}
) as s
on {{ spark_keys_equal(key, 't', 's') }} and t.sys_start = s.sys_start and s.reopened and t.sys_end = {{ far }}
when matched and not s.keep then delete
when matched then update set t.sys_end = s.sys_end, t.sys_known_to = s.sys_known_to
when not matched and s.keep then insert ({{ cols }}, sys_start, sys_end, sys_known_from, sys_known_to)
    values ({{ spark_column_list(columns.keys(), 's.') }}, s.sys_start, s.sys_end, s.sys_known_from, s.sys_known_to)
{%- endif %}
{% endmacro %}
