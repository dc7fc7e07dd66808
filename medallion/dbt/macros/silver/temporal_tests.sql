-- Generic tests of system-versioned history tables (columns sys_start, sys_end). The table's
-- constraints already forbid these failures; the tests make them visible in every build.
--
-- Incremental by default: a build tests only the keys that bronze changed since the last build
-- whose tests all passed (medallion.build_watermark.tested_to, moved by medallion_mark_tested at
-- the end of a passing `dbt build`), so a test costs what the change costs. The whole table is
-- tested when the stretch holds a truncate, a re-sync or a schema change, and whenever var
-- medallion_full_tests is true (`medallion build --full-tests`; the Dagster nightly job). When
-- nothing was tested yet (the first build, --full-refresh) the stretch starts before bronze's
-- first row: the incremental form then checks every key, and the next build runs it as stored.
--
-- An incremental test reads its stretch's bounds from medallion.build_watermark when it runs, not
-- when it compiles: its compiled SQL is the same from build to build, so a build without dbt
-- (medallion/stored_build.py) runs the very SQL the last dbt build compiled. Its first line says
-- which scope it compiled to (stored_build.py runs only incremental ones).

{% macro medallion_test_scope(node, bronze, key, columns) %}
    {#- {'full': bool, 'lo': SQL, 'hi': SQL, 'touched': SQL of the keys bronze changed in (lo, hi],
        'marker': the comment a compiled test starts with} -#}
    {%- set model = node.schema ~ '.' ~ (node.alias or node.name) -%}
    {%- set row = run_query(
        "select coalesce(max(last_commit_lsn), -1), max(tested_to) from " ~ medallion.medallion_watermark_relation() ~ " where model = "
        ~ medallion.medallion_literal(model)).rows[0] -%}
    {#- never tested (the first build, a --full-refresh): the stretch is all of bronze, (-1, hi],
        so the incremental form covers every key, and its SQL, kept by stored_build.py, tests
        the next build's stretch -#}
    {%- set full = var('medallion_full_tests', false) -%}
    {%- if not full and modules.medallion is defined -%}{%- set full = modules.medallion.given('full_tests') or false -%}{%- endif -%}
    {%- if not full and row[1] is not none and (row[0] | int) > (row[1] | int) -%}
        {%- set full = run_query(medallion.medallion_needs_build_sql(bronze, row[1] | int, row[0] | int)).columns[0].values()[0] -%}
    {%- endif -%}
    {%- set lo = "(select coalesce(max(tested_to), -1) from " ~ medallion.medallion_watermark_relation() ~ " where model = " ~ medallion.medallion_literal(model) ~ ")" -%}
    {%- set hi = medallion.medallion_watermark_sql(model) -%}
    {%- set key_columns = {} -%}
    {%- for k in key %}{% do key_columns.update({k: columns[k]}) %}{% endfor -%}
    {%- set touched -%}
        select distinct {{ medallion.medallion_column_list(key) }}
        from ({{ medallion.cdc_feed(bronze, key, key_columns, node.config.get('column_names') or {}) }}) as feed
        where _m_lsn > {{ lo }} and _m_lsn <= {{ hi }}
    {%- endset -%}
    {%- set marker = '-- medallion: ' ~ ('whole table' if full else 'incremental') ~ ' test of ' ~ model -%}
    {{- return({'full': full, 'lo': lo, 'hi': hi, 'touched': touched, 'marker': marker}) -}}
{% endmacro %}


{% macro medallion_watermark_sql(model) -%}
    {#- the last bronze position applied to a model, read when the statement runs -#}
    (select coalesce(max(last_commit_lsn), -1) from {{ medallion.medallion_watermark_relation() }} where model = {{ medallion.medallion_literal(model) }})
{%- endmacro %}


{% macro medallion_model_named(name) %}
    {#- the model of that name, in whichever package holds it: silver's generated models are the
        build project's own under `medallion build`, the package medallion_silver under plain dbt -#}
    {%- set found = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
                    | selectattr('name', 'equalto', name) | list -%}
    {{- return(found[0] if found else none) -}}
{% endmacro %}


{% macro medallion_bronze_of_node(node) %}
    {%- set source_node = graph.sources['source.' ~ node.package_name ~ '.' ~ node.sources[0][0] ~ '.' ~ node.sources[0][1]] -%}
    {{- return(api.Relation.create(database=target.database, schema=source_node.schema,
                                   identifier=source_node.identifier)) -}}
{% endmacro %}


{% macro medallion_mark_tested(results) %}
    {{- return(adapter.dispatch('medallion_mark_tested', 'medallion')(results)) -}}
{% endmacro %}


{% macro spark__medallion_mark_tested(results) %}
    {#- Spark's temporal tests read whole tables (silver/spark/temporal_tests.sql): nothing to record -#}
    select 'the Spark engine tests whole tables' as nothing_to_do
{% endmacro %}


{% macro default__medallion_mark_tested(results) %}
    {#- on-run-end: after a `dbt build` whose tests all passed, the models those tests covered are
        tested up to their watermark (a failing test keeps its stretch for the next build) -#}
    {%- set models = [] -%}
    {%- set failed = [] -%}
    {%- if execute and flags.WHICH == 'build' -%}
        {%- for result in results -%}
            {%- if result.status in ['fail', 'error', 'runtime error', 'warn'] -%}{% do failed.append(result) %}{%- endif -%}
            {%- if result.node.resource_type == 'test' -%}
                {%- for uid in result.node.depends_on.nodes if uid.startswith('model.') -%}
                    {%- set n = graph.nodes[uid] -%}
                    {%- do models.append(n.schema ~ '.' ~ (n.alias or n.name)) -%}
                    {%- set history = (result.node.test_metadata.kwargs or {}).get('history') if result.node.test_metadata else none -%}
                    {%- set h = medallion.medallion_model_named(history) if history else none -%}
                    {%- if h is not none -%}
                        {%- do models.append(h.schema ~ '.' ~ (h.alias or h.name)) -%}
                    {%- endif -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if models and not failed -%}
        update {{ medallion.medallion_watermark_relation() }} set tested_to = last_commit_lsn
        where model in ({% for m in models | unique %}{{ medallion.medallion_literal(m) }}{{ ", " if not loop.last }}{% endfor %})
    {%- else -%}
        select 'no tested stretch to record' as nothing_to_do
    {%- endif -%}
{% endmacro %}

{% test valid_history(model, key, history=none) %}
{#- Per key: every version is a non-empty [sys_start, sys_end), ends before the next one starts,
    and at most one is current (sys_end = 'infinity'). One scan of the history table, or (history:
    the model's name) of the keys bronze changed since the last passing build. -#}
{%- set key = [key] if key is string else key -%}
{%- set scope = {'full': true} -%}
{%- if execute and history -%}
    {%- set node = medallion.medallion_model_named(history) -%}
    {%- set bronze = medallion.medallion_bronze_of_node(node) -%}
    {%- set columns = medallion.medallion_ordered_columns(medallion.medallion_history_columns(medallion.medallion_timeline(bronze, node.config.get('column_names') or {}), this,
                                                node.config.get('column_types') or {})) -%}
    {%- set scope = medallion.medallion_test_scope(node, bronze, key, columns) -%}
{%- endif %}
{{ scope.marker or '' }}
with versions as (
    select
        {{ medallion.medallion_column_list(key) }},
        sys_start,
        sys_end,
        lead(sys_start) over by_key as _m_next_start,
        count(*) filter (where sys_end = 'infinity') over (partition by {{ medallion.medallion_column_list(key) }}) as _m_current_versions
    from {{ model }}
    {%- if not scope.full %}
    where ({{ medallion.medallion_column_list(key) }}) in ({{ scope.touched }})
    {%- endif %}
    window by_key as (partition by {{ medallion.medallion_column_list(key) }} order by sys_start)
),

final as (
    select * from versions
    where sys_start >= sys_end or sys_end > _m_next_start or _m_current_versions > 1
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
    {%- set node = medallion.medallion_model_named(history) -%}
    {%- set key = node.config.key -%}
    {%- set bronze = medallion.medallion_bronze_of_node(node) -%}
    {%- set timeline = medallion.medallion_timeline(bronze, node.config.get('column_names') or {}) -%}
    {%- set history_columns = medallion.medallion_history_columns(timeline, this, node.config.get('column_types') or {}) -%}
    {%- set columns = medallion.medallion_ordered_columns(history_columns) -%}
    {%- set cols = medallion.medallion_column_list(columns.keys()) -%}
    {%- set model_name = node.schema ~ '.' ~ (node.alias or node.name) -%}
    {%- set watermark = run_query("select " ~ medallion.medallion_watermark_sql(model_name)).columns[0].values()[0] | int -%}
    {%- set events = [] -%}
    {%- for event in medallion.medallion_schema_events(timeline, columns) -%}
        {%- if event.lsn <= watermark %}{% do events.append(event) %}{% endif -%}
    {%- endfor -%}
    {%- set scope = medallion.medallion_test_scope(node, bronze, key, columns) -%}
{{ scope.marker }}
with all_changes as (
    {{ medallion.cdc_feed(bronze, key, columns, node.config.get('column_names') or {}) }}
),

feed as (
    -- only what the model has applied: an ingest may add rows while this test runs; when
    -- incremental, only the stretch since the last passing build (a touched key's last change
    -- is in it, and no truncate or schema change is: medallion_test_scope)
    select * from all_changes where _m_lsn <= {{ scope.hi }}
    {%- if not scope.full %} and _m_lsn > {{ scope.lo }}{% endif %}
),

truncates as materialized (
    -- few or none; materialized, or each row below would scan the feed again
    select _m_lsn, _m_ordinal, _m_source_table from feed where _m_op in ('T', 'E')  -- a re-sync: see epochs.sql
),

latest as (
    select distinct on ({{ medallion.medallion_column_list(key) }}) *
    from feed
    where _m_op not in ('T', 'E')
    order by {{ medallion.medallion_column_list(key) }}, _m_lsn desc, _m_ordinal desc
),

replayed_0 as (
    select {{ cols }}, _m_lsn, _m_ordinal
    from latest
    where _m_op <> 'D'
      -- a truncate of the captured table, or of the partition the row lives in, came after it
      and not exists (
          select from truncates as t
          where (t._m_lsn, t._m_ordinal) > (latest._m_lsn, latest._m_ordinal)
            and t._m_source_table in ({{ medallion.medallion_literal(node.config.source_table) }}, latest._m_source_table))
),
{% for event in events %}
replayed_{{ loop.index }} as (
    -- a schema change after the row's last change gave it its new content (schema_evolution.sql)
    select
        {%- for name in columns %}
        {% if name in event.set -%}
        case when (_m_lsn, _m_ordinal) < ({{ event.lsn }}, {{ event.ordinal }}) then {{ event.set[name] }}
             else {{ medallion.medallion_quote(name) }} end
        {%- else %}{{ medallion.medallion_quote(name) }}{% endif %} as {{ medallion.medallion_quote(name) }},
        {%- endfor %}
        _m_lsn, _m_ordinal
    from replayed_{{ loop.index0 }}
    {%- if event.drop %}
    where (_m_lsn, _m_ordinal) > ({{ event.lsn }}, {{ event.ordinal }})
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
    {%- if not scope.full %}
    where ({{ medallion.medallion_column_list(key) }}) in (select {{ medallion.medallion_column_list(key) }} from feed)
    {%- endif %}
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
