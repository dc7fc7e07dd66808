{#-
    A mart written as one plain SQL file: `{{ config(materialized='gold_mart') }}` over silver's
    current relations (through ref). medallion/gold/plan.py reads the compiled SQL with sqlglot
    and derives the grain (the GROUP BY), the silver relations read and their keys, the SQL that
    finds the groups a change reaches and the SQL that recomputes only those groups; this file
    runs them. An incremental build, in one transaction per mart:

      1. the keys bronze changed, per silver relation read, since the mart's last build
         (<mart>__seen: the silver watermarks it saw; an index range scan per bronze table);
      2. gold_scope: every group an aggregating block of the SQL puts a row holding such a key
         in, on silver now and on silver as the last build saw it (the history as known at the
         load time of the last change that build applied: <name>_as_of('infinity', known)). So
         a line moved to another group touches both, a deleted one the group it was in, a
         change in a dimension only the groups its join reaches;
      3. deletes those groups from the mart and inserts them recomputed by the same SQL with
         every aggregating block filtered to gold_scope.

    A mart of one aggregating SELECT over inner joins whose aggregates are sum, count, avg (with
    FILTER) takes the delta path instead of step 3 (plan.delta, medallion/gold/delta.py): the
    sums and counts its aggregates are made of are kept per group in <mart>__state and moved by
    the same aggregates over the changed lines as silver holds them now minus as the last build
    saw them; the touched groups' mart rows are derived from the state (HAVING applied there).
    A group's other lines are not read. A sum over a floating type (inexact under subtraction:
    gold_plain_delta_check) and every other shape recompute the touched groups (step 3).

    Bookkeeping: <mart>__seen (one row per silver relation) and, on the delta path,
    <mart>__state (one row per group). A SQL the plan cannot maintain
    (plan.full names the construct) is computed in full at every build, and the build says so.
    gold.<mart>_as_of(ts[, known]) is the same SQL over the histories' as-of functions, with the
    built mart's columns.
-#}

{% macro gold_plain_relations() %}
    {#- {schema.identifier: what silver knows of it} for every model or source the mart refs -#}
    {%- set relations = {} -%}
    {%- set position = [0] -%}
    {%- for uid in model.depends_on.nodes -%}
        {%- set node = graph.nodes.get(uid) or graph.sources.get(uid) -%}
        {%- set name = node.schema ~ '.' ~ (node.alias or node.identifier or node.name) -%}
        {%- set kind = node.config.materialized if node.resource_type == 'model' else node.resource_type -%}
        {%- set history = none -%}
        {%- if kind == 'current_view' -%}
            {%- set parents = node.depends_on.nodes | select('in', graph.nodes) | list -%}
            {%- set history = graph.nodes[parents[0]] -%}
            {%- set reader = history -%}
        {%- elif kind == 'current_state' -%}
            {%- set found = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
                            | selectattr('config.materialized', 'equalto', 'system_versioned') | list -%}
            {%- set histories = [] -%}
            {%- for candidate in found if candidate.config.get('source_table') == node.config.get('source_table') -%}
                {%- do histories.append(candidate) -%}
            {%- endfor -%}
            {%- set history = histories[0] if histories else none -%}
            {%- set reader = node -%}
        {%- endif -%}
        {%- if kind == 'system_versioned' -%}
            {%- do relations.update({name: {'dep': position[0], 'key': node.config.key, 'types': [],
                                            'full': 'a silver history (' ~ node.name ~ ') read whole'}}) -%}
        {%- elif history is none -%}
            {%- do relations.update({name: {'dep': position[0], 'key': [], 'types': [],
                'untraceable': node.resource_type ~ ' ' ~ node.name ~ (' (materialized ' ~ kind ~ ', not a silver relation)' if node.resource_type == 'model' else '')}}) -%}
        {%- else -%}
            {%- set key = reader.config.key -%}
            {%- set columns = {} -%}
            {%- for c in adapter.get_columns_in_relation(api.Relation.create(database=target.database, schema=node.schema,
                                                                             identifier=node.alias or node.name)) -%}
                {%- do columns.update({c.name: c.data_type}) -%}
            {%- endfor -%}
            {%- do relations.update({name: {
                'dep': position[0], 'model': node.name, 'key': key,
                'types': medallion.gold_plain_types(key, columns),
                'as_of': medallion.medallion_quote(history.schema) ~ '.' ~ medallion.medallion_quote(history.config.get('as_of') or (history.alias or history.name) ~ '_as_of'),
                'bronze': (medallion.medallion_bronze_of_node(reader) | string),
                'watermark': reader.schema ~ '.' ~ (reader.alias or reader.name),
                'tables': medallion.gold_plain_tables(node if kind == 'current_state' else none, history)}}) -%}
        {%- endif -%}
        {%- do position.append(position.pop() + 1) -%}
    {%- endfor -%}
    {{- return(relations) -}}
{% endmacro %}


{% macro gold_plain_tables(current, history) %}
    {#- the tables behind a silver relation: a current-state table itself, and the history its
        current view and its as-of function read -#}
    {%- set tables = [] -%}
    {%- for node in [current, history] if node is not none -%}
        {%- do tables.append(api.Relation.create(database=target.database, schema=node.schema,
                                                 identifier=node.alias or node.name, type='table').include(database=False) | string) -%}
    {%- endfor -%}
    {{- return(tables) -}}
{% endmacro %}


{% macro gold_plain_indexes_sql(relations, plan, groups) %}
{#- an index on every column through which the mart's SQL joins a silver relation (plan.join_columns),
    on the tables behind it, where none starts with that column: a changed key reaches its lines
    by index lookups instead of reading the relation whole (a current-state table and its
    history alike: now and as the last build saw it). With groups (the mart recomputes its
    touched groups), also on each grain column that is a column of one relation
    (plan.group_columns, on the current table), which the recompute filters that relation by.
    Made once, under a lock taken in one order (marts built side by side make it once, without
    deadlock); a table silver rebuilds gets it again at the mart's next dbt build. -#}
{%- set wanted = [] -%}
{%- for name, columns in plan.join_columns.items() if relations[name].tables is defined -%}
    {%- for table in relations[name].tables -%}
        {%- for column in columns %}{% do wanted.append((table, column)) %}{% endfor -%}
    {%- endfor -%}
{%- endfor -%}
{%- for name, columns in plan.group_columns.items() if groups and relations[name].tables is defined -%}
    {%- for column in columns if (relations[name].tables[0], column) not in wanted -%}
        {%- do wanted.append((relations[name].tables[0], column)) -%}
    {%- endfor -%}
{%- endfor -%}
{%- for table, column in wanted | unique | sort %}
{%- set missing -%}
not exists (select from pg_index as i join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
            where i.indrelid = {{ medallion.medallion_literal(table) }}::regclass and a.attname = {{ medallion.medallion_literal(column) }})
{%- endset %}
do $gold_index$ begin
    if {{ missing }} then
        lock table {{ table }} in share row exclusive mode;
        if {{ missing }} then
            create index on {{ table }} ({{ medallion.medallion_quote(column) }});
        end if;
    end if;
end $gold_index$;
{%- endfor %}
{% endmacro %}


{% macro gold_plain_types(key, columns) %}
    {%- set types = [] -%}
    {%- for k in key %}{% do types.append(columns.get(k, 'text')) %}{% endfor -%}
    {{- return(types) -}}
{% endmacro %}


{% macro gold_plain_deps(relations, plan) %}
    {#- the relations the plan follows, as gold_capture_stretch_sql / gold_needs_full_sql read them -#}
    {%- set deps = [] -%}
    {%- for name, info in relations.items() if info.dep in plan.deps -%}
        {%- set bronze = info.bronze.split('.') | map('replace', '"', '') | list -%}
        {%- do deps.append({'dep': info.dep, 'key': info.key, 'watermark': info.watermark,
                            'bronze': api.Relation.create(database=bronze[0], schema=bronze[1], identifier=bronze[2])}) -%}
    {%- endfor -%}
    {{- return(deps) -}}
{% endmacro %}


{% macro gold_plain_changes_sql(deps) %}
{#- gold_changed_keys(dep, key): the keys bronze changed in the stretch the mart has not seen,
    before and after each change; and, per relation, the load time of the last change the last
    build applied (the history as known then is silver as that build saw it). JIT off: these
    statements read few rows by index, and their estimates over whole histories would start a
    compile that costs more than the statement (measured: 0.4 s for a filter over 0 rows). Random
    reads priced as the cached reads they are: the step looks up the rows of its changed keys,
    which silver has just written; at the default price (4) the planner was seen to read a
    180k-row history whole to find 1,600 of them (0.22 s instead of 0.05) -#}
set local jit = off;
set local random_page_cost = 1.1;
drop table if exists gold_changed_keys, gold_scope;
create temporary table gold_changed_keys on commit drop as
{%- for dep in deps %}
select distinct {{ dep.dep }} as dep, jsonb_build_object(
    {%- for k in dep.key %}{{ medallion.medallion_literal(k) }}, image -> {{ medallion.medallion_literal(k) }}{{ ", " if not loop.last }}{% endfor %}) as key
from (
    select full_row as image from {{ dep.bronze }} where {{ medallion.gold_stretch_sql(dep) }}
    union all
    select old_row from {{ dep.bronze }} where {{ medallion.gold_stretch_sql(dep) }} and old_row is not null
) as changes
{{- "\nunion all" if not loop.last }}
{%- endfor %};
analyze gold_changed_keys;
{%- for dep in deps %}
select set_config('medallion.gold_known_{{ dep.dep }}', coalesce(
    (select load_ts::text from {{ dep.bronze }}
     where commit_lsn <= (select lo from gold_stretch where model = {{ medallion.medallion_literal(dep.watermark) }})
     order by commit_lsn desc, ordinal desc limit 1), '-infinity'), true);
{%- endfor %}
{% endmacro %}


{% macro gold_plain_apply_sql(target_relation, grain, plan) %}
{%- set g = medallion.medallion_column_list(grain) -%}
set local jit = off;
create temporary table gold_scope on commit drop as
{{ plan.touched_sql }};
analyze gold_scope;
delete from {{ target_relation }} where ({{ g }}) in (select {{ g }} from gold_scope);
insert into {{ target_relation }}
select * from ({{ plan.scoped_sql }}) as mart
where ({{ g }}) in (select {{ g }} from gold_scope);
{% endmacro %}


{% macro gold_plain_delta_check(plan) %}
    {#- why the mart recomputes its touched groups rather than follow its changed lines, or none:
        the plan's reason, or a sum whose type subtraction does not undo exactly (float) -#}
    {%- if plan.full -%}{{ return(plan.full) }}{%- endif -%}
    {%- if plan.delta is none -%}{{ return(plan.recompute) }}{%- endif -%}
    {%- for probe in plan.delta.probes if probe.sums -%}
        {% do run_query("drop table if exists gold_state_probe; create temporary table gold_state_probe as select * from ("
                        ~ probe.sql ~ ") as state limit 0") %}
        {%- set names = [] -%}
        {%- for name in probe.sums %}{% do names.append(medallion.medallion_literal(name)) %}{% endfor -%}
        {%- set inexact = run_query(
            "select string_agg(distinct format_type(atttypid, atttypmod), ', ') from pg_attribute "
            ~ "where attrelid = 'pg_temp.gold_state_probe'::regclass and attname in (" ~ names | join(', ')
            ~ ") and atttypid not in ('bigint'::regtype, 'numeric'::regtype, 'integer'::regtype)").columns[0].values()[0] -%}
        {% do run_query("drop table gold_state_probe") %}
        {%- if inexact -%}
            {{ return("a sum over " ~ inexact ~ " (not exact under subtraction)") }}
        {%- endif -%}
    {%- endfor -%}
    {{- return(none) -}}
{% endmacro %}


{% macro gold_plain_drop_state_sql(state_relation) %}
{#- every state table of the mart: <mart>__state and its blocks' and values' <mart>__state_<b>[_v<i>]
    (medallion/gold/delta.py), whatever shape the mart's SQL had when they were made -#}
do $gold_state$ declare found regclass; begin
    for found in select c.oid::regclass from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
                 where n.nspname = {{ medallion.medallion_literal(state_relation.schema) }} and c.relkind = 'r'
                   and (c.relname = {{ medallion.medallion_literal(state_relation.identifier) }}
                        or (starts_with(c.relname, {{ medallion.medallion_literal(state_relation.identifier ~ '_') }})
                            and substr(c.relname, {{ state_relation.identifier | length + 2 }}) ~ '^[0-9]+(_v[0-9]+)?$'))
    loop
        execute format('drop table %s', found);
    end loop;
end $gold_state$;
{% endmacro %}


{% macro gold_plain_state_sql(state_relation, delta) %}
{#- the delta path's state tables from every line (a full build), the first tagged with its
    definition's fingerprint -#}
{{ medallion.gold_plain_drop_state_sql(state_relation) }}
{{ delta.state_sql }}
comment on table {{ state_relation }} is {{ medallion.medallion_literal(medallion.gold_plain_state_tag(delta)) }};
{% endmacro %}


{% macro gold_plain_state_tag(delta) %}
    {{- return('medallion gold state ' ~ local_md5(delta.state_sql)) -}}
{% endmacro %}


{% macro gold_plain_delta_sql(target_relation, grain, delta) %}
{#- the delta path's step 3: each block's state moved by its changed lines (now minus as last
    seen), a group whose lines are all gone dropped, the touched groups' mart rows derived from
    the states -#}
{%- set g = medallion.medallion_column_list(grain) -%}
set local jit = off;
{{ delta.delta_sql }}
delete from {{ target_relation }} where ({{ g }}) in (select {{ g }} from gold_scope);
insert into {{ target_relation }}
select * from ({{ delta.derived_sql }}) as mart;
{% endmacro %}


{% macro gold_plain_as_of(target_relation, plan) %}
    {#- gold.<mart>_as_of(ts[, known]): the same SQL over the histories, the built mart's columns -#}
    {%- if plan.as_of_sql is none -%}{{ return('') }}{%- endif -%}
    {%- set returns = [] -%}
    {%- for c in adapter.get_columns_in_relation(target_relation) -%}
        {%- do returns.append(medallion.medallion_quote(c.name) ~ ' ' ~ c.data_type) -%}
    {%- endfor -%}
    {{- return(medallion.gold_create_as_of_function(config.get('as_of') or this.identifier ~ '_as_of', returns | join(', '),
                                          plan.as_of_sql, plan.as_of_known_sql)) -}}
{% endmacro %}


{% macro postgres__medallion_build_gold_mart() %}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set seen_relation = medallion.gold_seen_relation(this) -%}
    {%- set state_relation = medallion.gold_state_relation(this) -%}
    {%- set relations = medallion.gold_plain_relations() -%}
    {%- if modules.medallion is not defined -%}
        {{ exceptions.raise_compiler_error(this.identifier ~ ": a plain-SQL gold_mart is built by `medallion build` (it reads the SQL with sqlglot)") }}
    {%- endif -%}
    {%- set plan = modules.medallion.plan_mart(this.identifier, sql, relations, config.get('grain'),
                                               [state_relation.database, state_relation.schema, state_relation.identifier]) -%}
    {%- if plan.error -%}{{ exceptions.raise_compiler_error(plan.error) }}{%- endif -%}
    {%- set grain = plan.grain -%}
    {%- set deps = medallion.gold_plain_deps(relations, plan) if not plan.full else [] -%}
    {%- set recompute = medallion.gold_plain_delta_check(plan) -%}
    {%- set delta = plan.delta if recompute is none else none -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set state_ready = delta is none or run_query(
            "select obj_description(to_regclass(" ~ medallion.medallion_literal(state_relation | string) ~ "), 'pg_class')"
        ).columns[0].values()[0] == medallion.gold_plain_state_tag(delta) -%}
    {%- set incremental = existing_relation is not none and existing_relation.type == 'table'
                          and not should_full_refresh() and not plan.full
                          and load_relation(seen_relation) is not none
                          and load_relation(medallion.gold_basis_relation(this)) is none and state_ready -%}
    {%- set lock_sql = "lock table " ~ target_relation ~ " in share row exclusive mode;\n" -%}
    {%- set full_sql = ("-- medallion note: " ~ plan.note ~ "\n" if plan.note else "") ~ "delete from " ~ target_relation ~ ";\ninsert into " ~ target_relation
                       ~ " select * from (" ~ sql ~ ") as mart;\n"
                       ~ (medallion.gold_plain_state_sql(state_relation, delta) if delta is not none else "") -%}

    {%- if deps -%}
        {%- set capture = lock_sql ~ medallion.gold_capture_stretch_sql(seen_relation, deps) -%}
        {%- set step = medallion.gold_plain_changes_sql(deps) ~ plan.keys_sql
                       ~ (medallion.gold_plain_delta_sql(target_relation, grain, delta) if delta is not none
                          else medallion.gold_plain_apply_sql(target_relation, grain, plan))
                       ~ medallion.gold_seen_sql(seen_relation) -%}
    {%- endif %}

    {%- if deps %}
        {%- set indexes = medallion.gold_plain_indexes_sql(relations, plan, delta is none) -%}
        {%- if indexes | trim %}{% do run_query(indexes) %}{% endif %}
    {%- endif %}
    {%- if not incremental %}
        {%- if existing_relation is not none %}{{ adapter.drop_relation(existing_relation) }}{% endif %}
        {% do run_query("drop table if exists " ~ medallion.gold_basis_relation(this) ~ "; drop table if exists " ~ seen_relation
                        ~ ";\n" ~ medallion.gold_plain_drop_state_sql(state_relation)) %}
        {%- if deps %}{% do run_query(medallion.gold_capture_stretch_sql(none, deps)) %}{% endif %}
        {% call statement('main') -%}
            create table {{ target_relation }} as
            select * from ({{ sql }}) as mart
            {%- if grain %} order by {{ medallion.medallion_column_list(grain) }}{% endif %};
            {%- if grain and not plan.full %}
            alter table {{ target_relation }} add primary key ({{ medallion.medallion_column_list(grain) }});
            {%- endif %}
            {%- if delta is not none %}
            {{ medallion.gold_plain_state_sql(state_relation, delta) }}
            {%- endif %}
            {%- if deps %}
            {{ medallion.gold_seen_sql(seen_relation) }}
            {%- endif %}
        {%- endcall %}
        {#- which path the mart takes, said on its full builds only (plan.note covers plan.full) -#}
        {%- if delta is not none %}
            {%- do modules.medallion.note(this.identifier ~ " follows its changed rows: its sums and counts are kept per group in "
                                          ~ state_relation.identifier) %}
        {%- elif not plan.full %}
            {%- do modules.medallion.note(this.identifier ~ " recomputes the groups a change touches: its SQL has " ~ recompute) %}
        {%- endif %}
        {%- if plan.full %}
            {% do medallion.medallion_store_follow_step(target_relation, 2, lock_sql=lock_sql, step_sql=full_sql) %}
        {%- else %}
            {#- the step depends on the SQL only: stored now, the follower and builds without dbt
                refresh the mart from its first build on -#}
            {% do medallion.medallion_store_follow_step(target_relation, 2, lock_sql=capture, step_sql=step,
                                              needs_build_sql=medallion.gold_needs_full_sql(deps)) %}
        {%- endif %}
    {%- else %}
        {%- if delta is none %}{% do run_query(medallion.gold_plain_drop_state_sql(state_relation)) %}{% endif %}
        {% do run_query(capture) %}
        {%- set needs_full = run_query(medallion.gold_needs_full_sql(deps)).columns[0].values()[0] -%}
        {% call statement('main') -%}
            {%- if needs_full %}
            {{ full_sql }}
            {{ medallion.gold_seen_sql(seen_relation) }}
            {%- else %}
            {{ step }}
            {%- endif %}
        {%- endcall %}
        {% do medallion.medallion_store_follow_step(target_relation, 2, lock_sql=capture, step_sql=step,
                                          needs_build_sql=medallion.gold_needs_full_sql(deps)) %}
    {%- endif %}
    {% do run_query(medallion.gold_plain_as_of(target_relation, plan)) %}

    {{ return(target_relation) }}
{% endmacro %}
