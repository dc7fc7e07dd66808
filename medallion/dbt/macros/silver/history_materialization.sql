{% macro postgres__medallion_build_history() %}
{#- Builds the history of one captured table from its bronze change table, the model's one
    source(): a generated model is just `select * from {{ source('bronze', 'br_customer_cdc') }}`
    (statically parsed, so dbt parses hundreds of them quickly) and this materialization types
    the changes itself (cdc_feed) with the columns bronze recorded for the table. Incremental by
    default: applies only bronze rows past the model's watermark, in one transaction together
    with the new watermark. --full-refresh drops the table and replays bronze from the start.
    config: key (list of columns), source_table (the captured root as bronze rows name it),
    as_of (the as-of function's name), object_prefix (for constraint and index names).

    Semantics, in commit order (commit_lsn, ordinal):
    - one version per source transaction that changed the key; several changes to one key in
      one transaction collapse to the last, since no reader could see the states in between;
    - sys_start = the change's commit_ts (for R rows: the snapshot time); sys_end = the next
      version's sys_start, the commit_ts of the delete or truncate that ended it, or 'infinity';
    - a key's versions start strictly later than the one before, in commit order: a version
      starts at max(commit_ts, previous start + 1 microsecond), so two transactions with one
      commit time (or a source clock that stepped back) keep both versions, in commit order,
      and sys_start < sys_end always holds; no version is replaced. -#}
    {%- set key = config.require('key') -%}
    {%- set bronze_relation = medallion.medallion_bronze_of(model) -%}
    {%- set timeline = medallion.medallion_timeline(bronze_relation) -%}
    {%- set history_columns = medallion.medallion_history_columns(timeline, this) -%}
    {%- set columns = medallion.medallion_ordered_columns(history_columns) -%}
    {%- set feed = medallion.cdc_feed(bronze_relation, key, columns) -%}
    {%- set source_root = config.require('source_table') -%}
    {#- a key medallion.toml declares (not the source's primary key) is checked in every batch -#}
    {%- set check_key = config.get('declared_key', false) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set existing_relation = load_cached_relation(this) -%}

    {%- if existing_relation is not none and (should_full_refresh() or existing_relation.type != 'table'
            or 'sys_known_from' not in (adapter.get_columns_in_relation(existing_relation) | map(attribute='name') | list)) %}
        {#- (a history made before the warehouse-time columns existed is rebuilt from bronze) -#}
        {{ adapter.drop_relation(existing_relation) }}
        {%- set existing_relation = none -%}
    {%- endif %}
    {%- if existing_relation is none %}
        {#- the first schema's columns, then sys_start/sys_end, then later columns appended: the
            order an incremental build reaches by ALTER TABLE ADD COLUMN -#}
        {%- set first = {} -%}
        {%- for name in history_columns['first'] %}{% do first.update({name: columns[name]}) %}{% endfor -%}
        {% do run_query(medallion.system_versioned_create_sql(target_relation, key, first)
                        ~ medallion.system_versioned_exclusion_sql(target_relation, key)
                        ~ medallion.medallion_forget_watermark_sql(target_relation)) %}
    {%- endif %}
    {%- set evolve = medallion.medallion_evolve_sql(target_relation, adapter.get_columns_in_relation(target_relation),
                                          history_columns) -%}
    {%- if evolve %}{% do run_query(evolve) %}{% endif -%}

    {#- one build at a time per table: a second waits here and then sees the first's watermark -#}
    {% do run_query("lock table " ~ target_relation ~ " in share row exclusive mode") %}
    {%- set lo = medallion.medallion_watermark(target_relation) -%}
    {%- set hi = medallion.medallion_bronze_high(bronze_relation, lo) -%}

    {%- if hi > lo %}
        {#- the changes between schema events, then each event at its DDL's position -#}
        {%- set events = [] -%}
        {%- for event in medallion.medallion_schema_events(timeline, columns) -%}
            {%- if event.lsn > lo and event.lsn <= hi %}{% do events.append(event) %}{% endif -%}
        {%- endfor -%}
        {%- set partial_truncates = run_query(
            "select exists (select from " ~ bronze_relation ~ " where op = 'T' and commit_lsn > " ~ lo
            ~ " and commit_lsn <= " ~ hi ~ " and source_table <> " ~ medallion.medallion_literal(source_root) ~ ")"
            ).columns[0].values()[0] -%}
        {%- set steps = medallion.medallion_steps(events, medallion.medallion_epochs(bronze_relation, lo, hi)) -%}
        {%- set position = namespace(after=[lo, 2147483647]) -%}
        {%- for step in steps + [none] -%}
            {%- set before = [step.lsn, step.ordinal] if step else [hi + 1, 0] -%}
            {% do run_query(medallion.system_versioned_stage_sql(target_relation, feed, key, position.after, before)) %}
            {%- if partial_truncates %}
                {% do run_query(medallion.system_versioned_seed_tables_sql(feed, key, position.after)) %}
            {%- endif %}
            {%- if check_key %}
                {% do run_query(medallion.system_versioned_key_check_sql(target_relation, key, source_root)) %}
            {%- endif %}
            {% do run_query(medallion.system_versioned_apply_sql(target_relation, key, columns, source_root)) %}
            {%- if step and step.epoch %}
                {% do run_query(medallion.system_versioned_epoch_sql(target_relation, feed, key, columns, step)) %}
                {%- set position.after = [step.lsn, 2147483647] -%}
            {%- elif step %}
                {% do run_query(medallion.system_versioned_event_sql(target_relation, key, history_columns, step)) %}
                {%- set position.after = [step.lsn, step.ordinal] -%}
            {%- endif %}
        {%- endfor -%}
    {%- endif %}
    {% call statement('main') -%}
        {%- if hi > lo %}
        {{ medallion.medallion_set_watermark_sql(target_relation, bronze_relation, hi) }};
        {%- elif hi >= 0 %}
        -- nothing new; the horizon may still move (the ingester caught up with an idle source)
        {{ medallion.medallion_set_watermark_sql(target_relation, bronze_relation, hi) }};
        {%- else %}
        select 'bronze is empty' as nothing_to_do;
        {%- endif %}
    {%- endcall %}
    {% do run_query(medallion.system_versioned_as_of_sql(target_relation)) %}
    {#- the next batch's statements, for `medallion run --follow` (follow.sql) -#}
    {%- set follow = {'lo': '__lo__', 'hi': '__hi__'} -%}
    {% do medallion.medallion_store_follow_step(target_relation, 1,
        lock_sql="lock table " ~ target_relation ~ " in share row exclusive mode",
        high_sql=medallion.medallion_bronze_high_sql(bronze_relation, follow.lo),
        needs_build_sql=medallion.medallion_needs_build_sql(bronze_relation, follow.lo, follow.hi),
        step_sql=medallion.system_versioned_stage_sql(target_relation, feed, key, [follow.lo, 2147483647],
                                            [follow.hi ~ ' + 1', 0])
                 ~ (medallion.system_versioned_key_check_sql(target_relation, key, source_root) if check_key else '')
                 ~ medallion.system_versioned_apply_sql(target_relation, key, columns, source_root)
                 ~ medallion.medallion_set_watermark_sql(target_relation, bronze_relation, follow.hi) ~ ';',
        idle_sql=medallion.medallion_set_watermark_sql(target_relation, bronze_relation, follow.hi)) %}

    {{ return(target_relation) }}
{% endmacro %}
