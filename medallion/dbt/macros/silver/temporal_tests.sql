-- Generic tests of system-versioned history tables (columns sys_start, sys_end). The table's
-- constraints already forbid these failures; the tests make them visible in every build.

{% test valid_history(model, key) %}
{#- Per key: every version is a non-empty [sys_start, sys_end), ends before the next one starts,
    and at most one is current (sys_end = 'infinity'). One scan of the history table. -#}
{%- set key = [key] if key is string else key -%}
with versions as (
    select
        {{ medallion_column_list(key) }},
        sys_start,
        sys_end,
        lead(sys_start) over by_key as next_start,
        count(*) filter (where sys_end = 'infinity') over (partition by {{ medallion_column_list(key) }}) as current_versions
    from {{ model }}
    window by_key as (partition by {{ medallion_column_list(key) }} order by sys_start)
),

final as (
    select * from versions
    where sys_start >= sys_end or sys_end > next_start or current_versions > 1
)

select * from final
{% endtest %}


{% test current_matches_bronze_replay(model, history) %}
{#- The current rows equal an independent replay of bronze up to the watermark of `history`,
    the model that read bronze (the history a view selects from, or the current-state table
    itself): per key, the row its last change left, unless that change was a delete or a
    truncate of its table (or of its partition) came after it. The replay shares only the typing (cdc_feed) with the history
    model, not the versioning. -#}
{%- if execute -%}
    {%- set node = graph.nodes['model.' ~ project_name ~ '.' ~ history] -%}
    {%- set key = node.config.key -%}
    {%- set source_node = graph.sources['source.' ~ project_name ~ '.' ~ node.sources[0][0] ~ '.' ~ node.sources[0][1]] -%}
    {%- set bronze = api.Relation.create(database=target.database, schema=source_node.schema,
                                         identifier=source_node.identifier) -%}
    {%- set timeline = medallion_timeline(bronze) -%}
    {%- set history_columns = medallion_history_columns(timeline, this, node.config.get('column_types') or {}) -%}
    {%- set columns = medallion_ordered_columns(history_columns) -%}
    {%- set cols = medallion_column_list(columns.keys()) -%}
    {%- set watermark = run_query(
        "select coalesce(max(last_commit_lsn), -1) from silver.build_watermark where model = "
        ~ medallion_literal(node.schema ~ '.' ~ (node.alias or node.name))).columns[0].values()[0] | int -%}
    {%- set events = [] -%}
    {%- for event in medallion_schema_events(timeline, columns) -%}
        {%- if event.lsn <= watermark %}{% do events.append(event) %}{% endif -%}
    {%- endfor -%}
with all_changes as (
    {{ cdc_feed(bronze, key, columns) }}
),

feed as (
    -- only what the model has applied: an ingest may add rows while this test runs
    select * from all_changes where commit_lsn <= {{ watermark }}
),

truncates as materialized (
    -- few or none; materialized, or each row below would scan the feed again
    select commit_lsn, ordinal, source_table from feed where op in ('T', 'E')  -- a re-sync: see epochs.sql
),

latest as (
    select distinct on ({{ medallion_column_list(key) }}) *
    from feed
    where op not in ('T', 'E')
    order by {{ medallion_column_list(key) }}, commit_lsn desc, ordinal desc
),

replayed_0 as (
    select {{ cols }}, commit_lsn, ordinal
    from latest
    where op <> 'D'
      -- a truncate of the captured table, or of the partition the row lives in, came after it
      and not exists (
          select from truncates as t
          where (t.commit_lsn, t.ordinal) > (latest.commit_lsn, latest.ordinal)
            and t.source_table in ({{ medallion_literal(node.config.source_table) }}, latest.source_table))
),
{% for event in events %}
replayed_{{ loop.index }} as (
    -- a schema change after the row's last change gave it its new content (schema_evolution.sql)
    select
        {%- for name in columns %}
        {% if name in event.set -%}
        case when (commit_lsn, ordinal) < ({{ event.lsn }}, {{ event.ordinal }}) then {{ event.set[name] }}
             else {{ medallion_quote(name) }} end
        {%- else %}{{ medallion_quote(name) }}{% endif %} as {{ medallion_quote(name) }},
        {%- endfor %}
        commit_lsn, ordinal
    from replayed_{{ loop.index0 }}
    {%- if event.drop %}
    where (commit_lsn, ordinal) > ({{ event.lsn }}, {{ event.ordinal }})
    {%- endif %}
),
{% endfor %}
expected as (
    -- rows compared as text: json, point and the like have no equality operator
    select row({{ cols }})::text as source_row
    from replayed_{{ events | length }}
),

actual as (
    select row({{ cols }})::text as source_row from {{ model }}
),

final as (
    (select 'missing from the view' as problem, * from (select * from expected except select * from actual) as e)
    union all
    (select 'not in bronze' as problem, * from (select * from actual except select * from expected) as a)
)

select * from final
{%- else -%}
select 1 as placeholder where false
{%- endif -%}
{% endtest %}
