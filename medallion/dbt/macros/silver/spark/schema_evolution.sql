{#-
    Schema changes and re-syncs on Spark: the same rules as PostgreSQL's (../schema_evolution.sql,
    ../epochs.sql), in Spark SQL. The history's columns come from the very same Jinja
    (medallion_history_columns over the timeline: every column the table ever had, widened types,
    column_types overrides); the timeline is read from the lake's copy of bronze.table_schema.
    Schema events change rows' content at the DDL's commit time; a re-sync (E row) observes the
    whole table at once. Each is one MERGE (or UPDATE/DELETE) of the Iceberg table, applied
    between the batches of changes around it, exactly where PostgreSQL applies it.
-#}

{% macro spark_timestamp(text) -%}
    {#- an instant as written by spark_timeline (UTC, the session's time zone) -#}
    timestamp'{{ text }}'
{%- endmacro %}


{% macro spark_plus_micro(ts) -%}
    {#- ts + 1 microsecond, exactly -#}
    timestamp_micros(unix_micros({{ ts }}) + 1)
{%- endmacro %}


{% macro spark_timeline(bronze_relation) %}
    {#- medallion_timeline's structure, from the lake: [{lsn, ordinal, ts, event, columns, known}] -#}
    {%- set result = run_query(
        "select commit_lsn, ordinal, date_format(commit_ts, 'yyyy-MM-dd HH:mm:ss.SSSSSS'), coalesce(event, 'snapshot'), "
        ~ "columns, date_format(recorded_at, 'yyyy-MM-dd HH:mm:ss.SSSSSS') from bronze.table_schema "
        ~ "where bronze_table = " ~ medallion.spark_literal(bronze_relation.identifier) ~ " order by commit_lsn, ordinal") -%}
    {%- set timeline = [] -%}
    {%- for lsn, ordinal, ts, event, columns, recorded_at in result.rows -%}
        {%- do timeline.append({'lsn': lsn | int, 'ordinal': ordinal | int, 'ts': ts, 'event': event,
                                'columns': fromjson(columns), 'known': recorded_at}) -%}
    {%- endfor -%}
    {%- if not timeline -%}
        {{ exceptions.raise_compiler_error("the lake has no recorded schema for " ~ bronze_relation
                                           ~ ": run 'medallion export' (or 'medallion run') first") }}
    {%- endif -%}
    {{- return(medallion.medallion_renamed_timeline(timeline)) -}}
{% endmacro %}


{% macro spark_as_text(name, warehouse_type) -%}
    {#- a history column's value as the text spark_typed reads back (bytes as hex) -#}
    {%- if medallion.spark_type(warehouse_type) == 'binary' -%}lower(hex({{ medallion.spark_quote(name) }}))
    {%- else -%}cast({{ medallion.spark_quote(name) }} as string)
    {%- endif -%}
{%- endmacro %}


{% macro spark__medallion_schema_change_sql(change, types) %}
    {#- one column's new content after a schema change (../schema_evolution.sql), in Spark SQL -#}
    {%- set c = change.column -%}
    {%- if change.kind == 'renamed' -%}
        {{- return(medallion.spark_typed(medallion.spark_as_text(change.was.name, types[change.was.name]), types[c.name])) -}}
    {%- elif change.kind == 'retyped' -%}
        {{- return(medallion.spark_typed(medallion.spark_as_text(c.name, types[c.name]), types[c.name])) -}}
    {%- elif change.kind == 'default' -%}
        {{- return(medallion.spark_typed(medallion.spark_literal(c.missing), types[c.name])) -}}
    {%- endif -%}
    {{- return('null') -}}
{% endmacro %}


{% macro spark_normal_type(spark_type_name) -%}
    {#- as Iceberg stores it: smallint and tinyint are ints -#}
    {{- 'int' if spark_type_name in ('smallint', 'tinyint') else spark_type_name -}}
{%- endmacro %}


{% macro spark_promotes(old, new) %}
    {#- Can Iceberg change a column of type old to new in place (int -> bigint, float -> double,
        decimal(p,s) -> decimal(q,s) with q > p)? -#}
    {%- if old == new -%}{{ return(true) }}{%- endif -%}
    {%- if (old, new) in [('int', 'bigint'), ('float', 'double')] -%}{{ return(true) }}{%- endif -%}
    {%- if old.startswith('decimal(') and new.startswith('decimal(') -%}
        {%- set o = old[8:-1].split(',') -%}
        {%- set n = new[8:-1].split(',') -%}
        {{- return(o[1] | trim == n[1] | trim and n[0] | int >= o[0] | int) -}}
    {%- endif -%}
    {{- return(false) -}}
{% endmacro %}


{% macro spark_evolve(relation, existing_columns, history_columns) %}
    {#- (statements, rebuild): bring an existing table to the history's columns. Added columns are
        appended (as ALTER TABLE ADD COLUMN does on PostgreSQL); a type Iceberg can widen in place
        is widened; any other type change (say int -> string by column_types) rebuilds the table
        from all of bronze, which gives the same rows in the new type. -#}
    {%- set have = {} -%}
    {%- for c in existing_columns -%}{%- do have.update({c.name: medallion.spark_normal_type(c.data_type | lower)}) -%}{%- endfor -%}
    {%- set statements, added = [], [] -%}
    {%- set rebuild = namespace(needed=false) -%}
    {%- for name in history_columns['first'] + history_columns['added'] -%}
        {%- set type = medallion.spark_type(history_columns['types'][name]) -%}
        {%- if name not in have -%}
            {%- do added.append(medallion.spark_quote(name) ~ " " ~ type) -%}
        {%- elif have[name] != medallion.spark_normal_type(type) -%}
            {%- if medallion.spark_promotes(have[name], medallion.spark_normal_type(type)) -%}
                {%- do statements.append("alter table " ~ relation ~ " alter column " ~ medallion.spark_quote(name) ~ " type " ~ type) -%}
            {%- else -%}
                {%- set rebuild.needed = true -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if added -%}{%- do statements.append("alter table " ~ relation ~ " add columns (" ~ (added | join(", ")) ~ ")") -%}{%- endif -%}
    {{- return((statements, rebuild.needed)) -}}
{% endmacro %}


{% macro spark_steps(bronze_relation, events, lo, hi) %}
    {#- {steps, truncates, rows}: the schema events in (lo, hi] and the re-syncs (E rows) there, in
        stream order, as medallion_steps; the truncates there, [{lsn, ordinal, table}]; and how many
        bronze rows other than E rows the range holds (0: nothing to apply). One small query. -#}
    {%- set result = run_query(
        "select op, commit_lsn, ordinal, source_table, date_format(commit_ts, 'yyyy-MM-dd HH:mm:ss.SSSSSS'), "
        ~ "date_format(load_ts, 'yyyy-MM-dd HH:mm:ss.SSSSSS'), 0 from " ~ bronze_relation
        ~ " where op in ('T', 'E') and commit_lsn > " ~ lo ~ " and commit_lsn <= " ~ hi
        ~ " union all select 'N', 0, 0, null, null, null, count(*) from " ~ bronze_relation
        ~ " where op <> 'E' and commit_lsn > " ~ lo ~ " and commit_lsn <= " ~ hi) -%}
    {%- set epochs, truncates = [], [] -%}
    {%- set counted = namespace(rows=0) -%}
    {%- for op, lsn, ordinal, source_table, ts, known, rows in result.rows | sort(attribute='2') | sort(attribute='1') -%}
        {%- if op == 'E' -%}
            {%- do epochs.append({'lsn': lsn | int, 'ordinal': 0, 'ts': ts, 'known': known, 'epoch': true,
                                  'drop': false, 'set': {}}) -%}
        {%- elif op == 'T' -%}
            {%- do truncates.append({'lsn': lsn | int, 'ordinal': ordinal | int, 'table': source_table}) -%}
        {%- else -%}
            {%- set counted.rows = rows | int -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set chosen = [] -%}
    {%- for event in events -%}
        {%- if event.lsn > lo and event.lsn <= hi %}{% do chosen.append(event) %}{% endif -%}
    {%- endfor -%}
    {{- return({'steps': medallion.medallion_steps(chosen, epochs), 'truncates': truncates, 'rows': counted.rows}) -}}
{% endmacro %}


{% macro spark_batch_rows(bronze_relation, plan, lo, hi) %}
    {#- How many bronze rows each batch between the steps holds ([n0, n1, ...], one per batch):
        a batch without any is not applied (each apply is a Spark job or two). Without steps the
        range's count says it; with them one more small query counts per batch. -#}
    {%- if not plan.steps -%}{{ return([plan.rows]) }}{%- endif -%}
    {%- if plan.rows == 0 -%}{{ return([0] * (plan.steps | length + 1)) }}{%- endif -%}
    {%- set position = namespace(after=[lo, 2147483647]) -%}
    {%- set cases = [] -%}
    {%- for step in plan.steps + [none] -%}
        {%- set before = [step.lsn, step.ordinal] if step else [hi + 1, 0] -%}
        {%- do cases.append("when " ~ medallion.spark_range(position.after, before) ~ " then " ~ loop.index0) -%}
        {%- if step -%}{%- set position.after = [step.lsn, 2147483647 if step.epoch else step.ordinal] -%}{%- endif -%}
    {%- endfor -%}
    {%- set result = run_query(
        "select batch, count(*) from (select case " ~ (cases | join(' ')) ~ " end as batch from " ~ bronze_relation
        ~ " where op <> 'E' and commit_lsn > " ~ lo ~ " and commit_lsn <= " ~ hi ~ ") where batch is not null group by batch") -%}
    {%- set found = {} -%}
    {%- for batch, rows in result.rows -%}{%- do found.update({batch | int: rows | int}) -%}{%- endfor -%}
    {%- set counts = [] -%}
    {%- for n in range(plan.steps | length + 1) -%}{%- do counts.append(found.get(n, 0)) -%}{%- endfor -%}
    {{- return(counts) -}}
{% endmacro %}


{% macro spark_truncated(truncates, after, before) %}
    {#- the source tables truncated strictly between two stream positions -#}
    {%- set tables = [] -%}
    {%- for t in truncates -%}
        {%- if (t.lsn > after[0] or (t.lsn == after[0] and t.ordinal > after[1]))
               and (t.lsn < before[0] or (t.lsn == before[0] and t.ordinal < before[1]))
               and t.table not in tables -%}
            {%- do tables.append(t.table) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(tables) -}}
{% endmacro %}


{% macro spark_history_event_sql(relation, key, columns, event) %}
{#- One schema event on a history at the DDL's commit time: a version that began at that very
    instant takes the new content in place; other current versions whose content changes end
    there (or 1 microsecond after they began) and a version with the new content follows. -#}
{%- set ts = medallion.spark_timestamp(event.ts) -%}
{%- set known = medallion.spark_timestamp(event.known) -%}
{%- set far = medallion.spark_far_future() -%}
{%- set names = columns.keys() | list -%}
{%- if event.drop -%}
    {{- return([
        "delete from " ~ relation ~ " where sys_end = " ~ far ~ " and sys_start = " ~ ts,
        "update " ~ relation ~ " set sys_end = greatest(" ~ ts ~ ", " ~ medallion.spark_plus_micro('sys_start')
            ~ "), sys_known_to = " ~ known ~ " where sys_end = " ~ far]) -}}
{%- endif -%}
{%- set merge -%}
merge into {{ relation }} as t
using (
    with changed as (
        select
            {%- for name in names %}
            {{ event.set[name] if name in event.set else medallion.spark_quote(name) }} as {{ medallion.spark_quote(name) }},
            {%- endfor %}
            sys_start as _m_old_start,
            greatest({{ ts }}, {{ medallion.spark_plus_micro('sys_start') }}) as _m_event_ts
        from {{ relation }}
        where sys_end = {{ far }}
          and not ({% for name in event.set %}{{ medallion.spark_quote(name) }} <=> {{ event.set[name] }}{{ " and " if not loop.last }}{% endfor %})
    )

    select changed.*, case when _m_old_start = {{ ts }} then 'in place' else 'close' end as _m_action from changed
    union all
    select changed.*, 'open' as _m_action from changed where _m_old_start <> {{ ts }}
) as s
on {{ medallion.spark_keys_equal(key, 't', 's') }} and t.sys_end = {{ far }} and t.sys_start = s._m_old_start and s._m_action <> 'open'
when matched and s._m_action = 'in place' then update set
    {%- for name in event.set %} t.{{ medallion.spark_quote(name) }} = s.{{ medallion.spark_quote(name) }}{{ "," if not loop.last }}{% endfor %}
when matched then update set t.sys_end = s._m_event_ts, t.sys_known_to = {{ known }}
when not matched and s._m_action = 'open' then insert ({{ medallion.spark_column_list(names) }}, sys_start, sys_end, sys_known_from, sys_known_to)
    values ({{ medallion.spark_column_list(names, 's.') }}, s._m_event_ts, {{ far }}, {{ known }}, {{ far }})
{%- endset -%}
{{- return([merge]) -}}
{% endmacro %}


{% macro spark_history_epoch_sql(relation, bronze, key, columns, epoch) %}
{#- A re-sync on a history: a current version whose key is not among the re-sync's rows ended
    during the gap (it ends at the re-sync); a row that differs from its current version (or is
    new) starts a version then; a row that is the same continues untouched. -#}
{%- set ts = medallion.spark_timestamp(epoch.ts) -%}
{%- set known = medallion.spark_timestamp(epoch.known) -%}
{%- set far = medallion.spark_far_future() -%}
{%- set names = columns.keys() | list -%}
merge into {{ relation }} as t
using (
    with observed as (
        select * from ({{ medallion.spark_cdc_feed(bronze, key, columns, [epoch.lsn, 0], [epoch.lsn, 2147483647]) }}) as feed
        where _m_op = 'R'
    ),

    current_versions as (
        select * from {{ relation }} where sys_end = {{ far }}
    ),

    gone as (
        select {{ medallion.spark_column_list(names, 'h.') }}, h.sys_start as _m_old_start,
               greatest({{ ts }}, {{ medallion.spark_plus_micro('h.sys_start') }}) as _m_event_ts, 'close' as _m_action
        from current_versions as h
        left anti join observed as e on {{ medallion.spark_keys_equal(key, 'h', 'e') }}
    ),

    changed as (
        select {{ medallion.spark_column_list(names, 'e.') }}, h.sys_start as _m_old_start,
               greatest({{ ts }}, {{ medallion.spark_plus_micro('h.sys_start') }}) as _m_event_ts
        from observed as e
        left join current_versions as h on {{ medallion.spark_keys_equal(key, 'h', 'e') }}
        where h.sys_start is null
           or not ({% for name in names %}h.{{ medallion.spark_quote(name) }} <=> e.{{ medallion.spark_quote(name) }}{{ " and " if not loop.last }}{% endfor %})
    )

    select * from gone
    union all
    select changed.*, 'close' as _m_action from changed where _m_old_start is not null
    union all
    select changed.*, 'open' as _m_action from changed
) as s
on {{ medallion.spark_keys_equal(key, 't', 's') }} and t.sys_end = {{ far }} and t.sys_start = s._m_old_start and s._m_action = 'close'
when matched then update set t.sys_end = s._m_event_ts, t.sys_known_to = {{ known }}
when not matched and s._m_action = 'open' then insert ({{ medallion.spark_column_list(names) }}, sys_start, sys_end, sys_known_from, sys_known_to)
    values ({{ medallion.spark_column_list(names, 's.') }}, s._m_event_ts, {{ far }}, {{ known }}, {{ far }})
{% endmacro %}


{% macro spark_current_state_event_sql(relation, event) %}
{#- One schema event on a current-state table: the rows take the DDL's new content. -#}
{%- if event.drop -%}
delete from {{ relation }}
{%- else -%}
update {{ relation }} set
    {%- for name in event.set %} {{ medallion.spark_quote(name) }} = {{ event.set[name] }}{{ "," if not loop.last }}{% endfor %}
{%- endif -%}
{% endmacro %}


{% macro spark_current_state_epoch_sql(relation, bronze, key, columns, epoch) %}
{#- A re-sync on a current-state table: rows gone during the gap go, new or changed rows come in
    as of the re-sync, unchanged rows stay as they were. -#}
{%- set names = columns.keys() | list -%}
merge into {{ relation }} as t
using (
    select * from ({{ medallion.spark_cdc_feed(bronze, key, columns, [epoch.lsn, 0], [epoch.lsn, 2147483647]) }}) as feed
    where _m_op = 'R'
) as s
on {{ medallion.spark_keys_equal(key, 't', 's') }}
when matched and not ({% for name in names %}t.{{ medallion.spark_quote(name) }} <=> s.{{ medallion.spark_quote(name) }}{{ " and " if not loop.last }}{% endfor %}) then update set
    {%- for name in names %} t.{{ medallion.spark_quote(name) }} = s.{{ medallion.spark_quote(name) }},{% endfor %}
    t.last_commit_ts = {{ medallion.spark_timestamp(epoch.ts) }}, t.source_table = s._m_source_table
when not matched then insert ({{ medallion.spark_column_list(names) }}, last_commit_ts, source_table)
    values ({{ medallion.spark_column_list(names, 's.') }}, {{ medallion.spark_timestamp(epoch.ts) }}, s._m_source_table)
when not matched by source then delete
{% endmacro %}
