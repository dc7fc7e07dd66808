{% macro spark__medallion_build_history() %}
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
    {{ return(medallion.spark_build_silver_table('history')) }}
{% endmacro %}


{% macro spark_history_create_sql(relation, key, columns) %}
create table {{ relation }} (
    {%- for column, type in columns.items() %}
    {{ medallion.spark_quote(column) }} {{ medallion.spark_type(type) }}{{ " not null" if column in key }},
    {%- endfor %}
    sys_start      timestamp not null,  -- source time: valid from (commit time)
    sys_end        timestamp not null,  -- ... until (exclusive); the far future while current
    sys_known_from timestamp not null,  -- warehouse time: loaded into bronze
    sys_known_to   timestamp not null   -- ... until its end was loaded; the far future while current
) using iceberg
tblproperties ({{ medallion.spark_write_properties() }})
{% endmacro %}


{% macro spark_history_merge_sql(relation, bronze, key, columns, source_root, after, before, truncated, empty=false) %}
{#- The batch of bronze rows strictly between after and before. truncated: the source tables the
    batch truncates (spark_truncated); without any, the statement has no truncate join at all,
    and the seed tables are read only when a truncate names one partition. empty: the table has
    no rows yet (its first batch), so nothing is reopened and a plain INSERT of the versions
    does what the MERGE would, in one Spark job instead of a join and a rewrite. -#}
{%- set feed = medallion.spark_cdc_feed(bronze, key, columns, after, before) -%}
{%- set has_truncates = truncated | length > 0 -%}
{%- set partial_truncates = truncated | reject('equalto', source_root) | list | length > 0 -%}
{%- set keys = medallion.spark_column_list(key) -%}
{%- set cols = medallion.spark_column_list(columns.keys()) -%}
{%- set far = medallion.spark_far_future() -%}
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
        select _m_lsn, _m_ordinal, _m_ts, _m_load_ts, _m_source_table from feed where _m_op = 'T'
    ),

    ranked as (
        select feed.*, row_number() over (partition by {{ keys }}, _m_lsn order by _m_ordinal desc) as _m_change_rank
        from feed
        where _m_op not in ('T', 'E')
    ),

    key_changes as (
        -- one change per key and transaction: its last (nobody could see the states in between)
        select _m_lsn, _m_ordinal, _m_op, _m_ts, _m_load_ts, _m_source_table, {{ cols }}
        from ranked
        where _m_change_rank = 1
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
        select {{ keys }}, _m_source_table
        from (
            select {{ keys }}, _m_source_table,
                   row_number() over (partition by {{ keys }} order by _m_lsn desc, _m_ordinal desc) as _m_change_rank
            from ({{ medallion.spark_cdc_feed(bronze, key, columns, [-1, 0], [after[0], after[1] + 1]) }}) as earlier
            where _m_op not in ('T', 'E')
        ) as latest
        where _m_change_rank = 1
        {%- else %}
        select {{ keys }}, cast(null as string) as _m_source_table from key_changes where false
        {%- endif %}
    ),

    events as (
        select cast(0 as bigint) as _m_lsn, 0 as _m_ordinal, 'S' as _m_op, reopened.sys_start as _m_ts,
               reopened.sys_known_from as _m_load_ts, seed_tables._m_source_table,
               {{ medallion.spark_column_list(columns.keys(), 'reopened.') }}
        from reopened
        left join seed_tables on {{ medallion.spark_keys_equal(key, 'seed_tables', 'reopened') }}
        union all
        select _m_lsn, _m_ordinal, _m_op, _m_ts, _m_load_ts, _m_source_table, {{ cols }}
        from key_changes
    ),

    timed as (
        -- a key's versions start strictly later than the one before, in commit order, even when
        -- the source's clock stepped back: max(commit_ts, previous start + 1 microsecond), a
        -- running max of (commit_ts - n microseconds) + n microseconds, in integer microseconds
        select
            numbered.*,
            timestamp_micros(max(unix_micros(numbered._m_ts) - numbered._m_n) over (
                partition by {{ medallion.spark_column_list(key, 'numbered.') }} order by numbered._m_lsn, numbered._m_ordinal
                rows between unbounded preceding and current row) + numbered._m_n) as _m_effective_ts
        from (
            select events.*, row_number() over (partition by {{ keys }} order by _m_lsn, _m_ordinal) as _m_n
            from events
        ) as numbered
    ),

    successors as (
        select
            timed.*,
            lead(_m_lsn) over by_key as _m_next_lsn,
            lead(_m_ordinal) over by_key as _m_next_ordinal,
            lead(_m_effective_ts) over by_key as _m_next_ts,
            lead(_m_load_ts) over by_key as _m_next_load_ts
        from timed
        window by_key as (partition by {{ keys }} order by _m_lsn, _m_ordinal)
    ),

    {%- if has_truncates %}
    ended as (
        -- the first truncate after each event that names the relation its row lives in
        select s.*, tr._m_lsn as _m_t_lsn, tr._m_ordinal as _m_t_ordinal, tr._m_ts as _m_t_ts, tr._m_load_ts as _m_t_load_ts,
               row_number() over (partition by {{ medallion.spark_column_list(key, 's.') }}, s._m_lsn, s._m_ordinal
                                  order by tr._m_lsn, tr._m_ordinal) as _m_truncate_rank
        from successors as s
        left join truncates as tr
          on (tr._m_lsn > s._m_lsn or (tr._m_lsn = s._m_lsn and tr._m_ordinal > s._m_ordinal))
         and (tr._m_source_table = {{ medallion.spark_literal(source_root) }} or tr._m_source_table = s._m_source_table)
    ),
    {%- else %}
    ended as (
        select successors.*, cast(null as bigint) as _m_t_lsn, cast(null as int) as _m_t_ordinal,
               cast(null as timestamp) as _m_t_ts, cast(null as timestamp) as _m_t_load_ts, 1 as _m_truncate_rank
        from successors
    ),
    {%- endif %}

    versions as (
        -- a version ends at whichever comes first: the key's next change or a truncate of the
        -- relation its row lives in; never before it starts, whatever the clocks say
        select
            {{ cols }},
            _m_effective_ts as sys_start,
            case
                when _m_t_lsn is not null
                     and (_m_next_lsn is null or _m_t_lsn < _m_next_lsn or (_m_t_lsn = _m_next_lsn and _m_t_ordinal < _m_next_ordinal))
                    then case
                        -- inserted and truncated in one transaction: never visible (dropped below)
                        when _m_t_lsn = _m_lsn then _m_effective_ts
                        else least(greatest(_m_t_ts, {{ medallion.spark_plus_micro('_m_effective_ts') }}), coalesce(_m_next_ts, {{ far }}))
                    end
                else coalesce(_m_next_ts, {{ far }})
            end as sys_end,
            _m_load_ts as sys_known_from,
            case
                when _m_t_lsn is not null
                     and (_m_next_lsn is null or _m_t_lsn < _m_next_lsn or (_m_t_lsn = _m_next_lsn and _m_t_ordinal < _m_next_ordinal))
                    then _m_t_load_ts
                else coalesce(_m_next_load_ts, {{ far }})
            end as sys_known_to,
            _m_op = 'S' as _m_reopened
        from ended
        where _m_truncate_rank = 1 and _m_op <> 'D'
    )

    -- keep: a version replaced at the very instant it started was never visible
    select versions.*, sys_start < sys_end as _m_keep from versions
{%- if empty %}
) as s
where _m_keep
{%- else %}
) as s
on {{ medallion.spark_keys_equal(key, 't', 's') }} and t.sys_start = s.sys_start and s._m_reopened and t.sys_end = {{ far }}
when matched and not s._m_keep then delete
when matched then update set t.sys_end = s.sys_end, t.sys_known_to = s.sys_known_to
when not matched and s._m_keep then insert ({{ cols }}, sys_start, sys_end, sys_known_from, sys_known_to)
    values ({{ medallion.spark_column_list(columns.keys(), 's.') }}, s.sys_start, s.sys_end, s.sys_known_from, s.sys_known_to)
{%- endif %}
{% endmacro %}


{% macro spark_check_declared_key(relation, bronze, key, columns, source_root, after, before, truncated) %}
{#- PostgreSQL's system_versioned_key_check_sql (../history.sql) on one batch: two rows live at
    once under a key medallion.toml declares (two snapshot rows, or an insert while the key's row
    is live) stop the build in the same one line. A batch that truncates is not checked (a
    truncate between two inserts of a key makes them legitimate; rare). -#}
{%- if truncated %}{{ return(none) }}{% endif -%}
{%- set keys = medallion.spark_column_list(key) -%}
{%- set found = run_query(
    "with feed as (" ~ medallion.spark_cdc_feed(bronze, key, columns, after, before) ~ "), "
    ~ "arrivals as (select " ~ keys ~ ", _m_lsn, _m_ordinal, _m_op from feed where _m_op in ('R', 'I', 'U', 'D') "
    ~ "union all select " ~ keys ~ ", cast(0 as bigint), 0, 'S' from " ~ relation
    ~ " where sys_end = " ~ medallion.spark_far_future() ~ " and (" ~ keys ~ ") in (select " ~ keys
    ~ " from feed where _m_op in ('R', 'I'))), "
    ~ "ordered as (select arrivals.*, lag(_m_op) over (partition by " ~ keys ~ " order by _m_lsn, _m_ordinal) as _m_previous_op "
    ~ "from arrivals) "
    ~ "select concat('(', concat_ws(',', " ~ (medallion.spark_key_texts(key) | join(', ')) ~ "), ')') from ordered "
    ~ "where _m_op in ('R', 'I') and _m_previous_op is not null and _m_previous_op <> 'D' limit 1") -%}
{%- if found.rows | length > 0 -%}
    {%- set names = key | join(', ') -%}
    {{ exceptions.raise_compiler_error(source_root ~ ": the key (" ~ names ~ ") declared in medallion.toml is not unique: "
        ~ "two rows with (" ~ names ~ ") = " ~ found.rows[0][0] ~ ' are live at once; set key under [tables."' ~ source_root
        ~ '"] to columns that identify one row, then run medallion build --full-refresh') }}
{%- endif -%}
{% endmacro %}


{% macro spark_key_texts(key) %}
    {%- set texts = [] -%}
    {%- for k in key %}{% do texts.append("cast(" ~ medallion.spark_quote(k) ~ " as string)") %}{% endfor -%}
    {{- return(texts) -}}
{% endmacro %}
