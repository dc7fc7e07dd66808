{#-
    Incremental gold marts. A mart is an aggregate over line sets (one row per payment, one
    per rental: models/gold/int_*_lines). Each mart keeps <mart>__basis: per line, the group
    (the mart's grain) it counted in at the last build, the keys of the silver rows it was made
    from (deps) and a fingerprint of the group, the fields the mart reads and those keys. A build:

      1. finds the lines that may have changed and compares them with the basis;
      2. the groups to recompute (gold_scope) are the old AND the new group of every line that
         appeared, disappeared, moved or changed a field the mart reads;
      3. brings the basis up to date for the lines that changed, then deletes those groups
         from the mart and inserts them recomputed, all in one transaction.

    The mart's SQL reads its lines through gold_input(lines model): on PostgreSQL that is the
    basis itself, which keeps each line's key, grain and fields (`line`), indexed by group. So
    recomputing a group reads that group's lines, not every fact row, and a full build and an
    incremental one compute from the very same rows. A field the SQL reads must be in `fields`
    (else it is no column of gold_input: the build fails, nothing silent).

    Which lines may have changed (step 1): when every input names, in changed_by, the silver
    models its lines are made from and the line column holding each one's key, only the lines
    whose keys those models' bronze changed since the mart's last build (<mart>__seen keeps the
    silver watermarks it saw): the current lines with such a key and the basis lines with one.
    Work follows the change, not the data. Every line is compared instead when an input names
    no changed_by, on the first incremental build, and when a stretch holds a truncate, a
    re-sync or a schema change (needs-full check). Both ways give the same scope.

    A group no line belongs to any more is deleted and not re-inserted. The first build and
    --full-refresh compute every group and write the basis from scratch: the same SQL without
    the scope filter, so an incremental build and a full one give the same rows.

    config: grain (list of columns, the mart's key; every line set has them), inputs (list of
    {lines: model name, key: line key column, fields: every other column the mart's SQL reads,
    changed_by: {silver model: line column holding its key}}).
-#}

{% macro gold_basis_relation(relation) %}
    {{- return(medallion.medallion_state_relation(relation, '__basis')) -}}
{% endmacro %}


{% macro gold_mart_is_incremental() %}
    {#- the mart and its basis exist and no full refresh was asked for (compile and run agree) -#}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {%- set existing = load_relation(this) -%}
    {%- set basis = load_relation(medallion.gold_basis_relation(this)) -%}
    {%- set current_basis = basis is not none and 'line' in (adapter.get_columns_in_relation(basis)
                                                             | map(attribute='name') | list) -%}
    {{- return(existing is not none and existing.type == 'table' and current_basis
               and not should_full_refresh()) -}}
{% endmacro %}


{% macro gold_in_scope() %}
    {#- the filter a mart's SQL puts on its lines: the groups this build recomputes, or all
        (per engine: Spark's scope is a temporary view named after the mart, gold/spark) -#}
    {{- return(adapter.dispatch('gold_in_scope', 'medallion')()) -}}
{% endmacro %}


{% macro default__gold_in_scope() %}
    {%- if medallion.gold_mart_is_incremental() -%}
        {%- set grain = medallion.medallion_column_list(config.require('grain')) -%}
        ({{ grain }}) in (select {{ grain }} from gold_scope)
    {%- else -%}
        true
    {%- endif -%}
{% endmacro %}


{% macro gold_input(lines) %}
    {#- the lines a mart's SQL reads, for the model `lines` (one of its inputs): per engine -#}
    {{- return(adapter.dispatch('gold_input', 'medallion')(lines)) -}}
{% endmacro %}


{% macro default__gold_input(lines) %}
    {#- the input's lines from the basis (typed as the lines model's columns): every line on a
        full build, the lines of the groups in scope on an incremental one (by the group index) -#}
    {%- if not execute -%}{{ return(ref(lines)) }}{%- endif -%}  {#- parsing: the dependency -#}
    {%- set inputs = config.require('inputs') -%}
    {%- set grain = config.require('grain') -%}
    {%- set found = inputs | selectattr('lines', 'equalto', lines) | list -%}
    {%- if found | length != 1 -%}
        {{ exceptions.raise_compiler_error(this.identifier ~ " reads gold_input('" ~ lines ~ "'), which is not one of its inputs") }}
    {%- endif -%}
    {%- set position = inputs.index(found[0]) + 1 -%}
    {%- set relation = ref(lines).include(database=False) -%}
    {%- set kinds = medallion.gold_field_kinds(relation) -%}
    (select
     {%- for column in medallion.gold_line_columns(grain, found[0]) %}
        {% if column == found[0]['key'] -%}
        b.line_key
        {%- elif column in grain -%}
        b.{{ medallion.medallion_quote(column) }}
        {%- elif kinds[column][1] == 'scalar' -%}
        (b.line ->> {{ medallion.medallion_literal(column) }})::{{ kinds[column][0] }}
        {%- elif kinds[column][1] == 'json' -%}
        (b.line -> {{ medallion.medallion_literal(column) }})::{{ kinds[column][0] }}
        {%- else -%}
        (jsonb_populate_record(null::{{ relation }}, jsonb_build_object({{ medallion.medallion_literal(column) }}, b.line -> {{ medallion.medallion_literal(column) }}))).{{ medallion.medallion_quote(column) }}
        {%- endif %} as {{ medallion.medallion_quote(column) }}{{ "," if not loop.last }}
     {%- endfor %}
     from {{ medallion.gold_basis_relation(this) }} as b
     where b.input = {{ position }}
     {%- if medallion.gold_mart_is_incremental() %}
       and ({{ medallion.medallion_column_list(grain, 'b.') }}) in (select {{ medallion.medallion_column_list(grain) }} from gold_scope)
     {%- endif %})
{%- endmacro %}


{% macro gold_field_kinds(relation) %}
    {#- {column: (type, how a basis line's jsonb value becomes it)} for a lines model: 'scalar' by
        its type's text input (what jsonb_populate_record does for these, at a seventh of its cost
        over 160k lines, measured), 'json' as json, 'other' (arrays, composites, domains) by
        jsonb_populate_record of that one field -#}
    {%- set rows = run_query(
        "select a.attname, format_type(a.atttypid, a.atttypmod), "
        ~ "case when t.typname in ('json', 'jsonb') then 'json' "
        ~ "when t.typtype in ('e', 'r') or (t.typtype = 'b' and t.typcategory <> 'A') then 'scalar' "
        ~ "else 'other' end "
        ~ "from pg_attribute as a join pg_type as t on t.oid = a.atttypid "
        ~ "where a.attrelid = " ~ medallion.medallion_literal(relation | string) ~ "::regclass "
        ~ "and a.attnum > 0 and not a.attisdropped").rows -%}
    {%- set kinds = {} -%}
    {%- for row in rows %}{% do kinds.update({row[0]: (row[1], row[2])}) %}{% endfor -%}
    {{- return(kinds) -}}
{% endmacro %}


{% macro gold_line_columns(grain, input) %}
    {#- what the basis keeps of a line: its key, its group and the fields the mart reads -#}
    {%- set columns = [input['key']] -%}
    {%- for column in grain + input['fields'] if column not in columns -%}{%- do columns.append(column) -%}{%- endfor -%}
    {{- return(columns) -}}
{% endmacro %}


{% macro gold_lines_sql(grain, inputs, touched=false) %}
    {#- one row per line of every input: (input: its position in inputs, line_key, grain...,
        deps: the silver keys it was made from, fp: md5 of the group, the fields the mart reads
        and deps, line: its key, group and fields, as gold_input reads them); touched: only the
        lines in gold_touched -#}
    {%- for input in inputs %}
    {%- set deps = (input.get('changed_by') or {}).values() | list %}
    select
        {{ loop.index }}::smallint as input,
        {{ medallion.medallion_quote(input['key']) }} as line_key,
        {{ medallion.medallion_column_list(grain) }},
        {{ medallion.gold_json_sql(deps) }} as deps,
        md5(row({{ medallion.medallion_column_list(grain) }}, {{ medallion.medallion_column_list(input['fields']) }},
                {{ medallion.gold_json_sql(deps) }})::text) as fp,
        {{ medallion.gold_json_sql(medallion.gold_line_columns(grain, input)) }} as line
    from {{ ref(input['lines']) }}
    {%- if touched %}
    where {{ medallion.medallion_quote(input['key']) }} in (select line_key from gold_touched where input = {{ loop.index }})
    {%- endif %}
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
{% endmacro %}


{% macro gold_json_sql(columns) -%}
    jsonb_build_object({% for c in columns %}{{ medallion.medallion_literal(c) }}, {{ medallion.medallion_quote(c) }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}


{% macro gold_seen_relation(relation) %}
    {{- return(medallion.medallion_state_relation(relation, '__seen')) -}}
{% endmacro %}


{% macro gold_state_relation(relation) %}
    {#- <mart>__state: per group, the sums and counts a delta-maintained mart is derived from
        (plain_mart.sql, medallion/gold/delta.py) -#}
    {{- return(medallion.medallion_state_relation(relation, '__state')) -}}
{% endmacro %}


{% macro gold_dependencies(inputs) %}
    {#- [{input, column, model, bronze, key, watermark}] for every changed_by entry: the silver
        model that read bronze for it (a current view's history), its bronze table and its one
        key column; none when an input names no changed_by or a key has several columns -#}
    {%- set found = [] -%}
    {%- for input in inputs -%}
        {%- set position = loop.index0 -%}
        {%- if not input.get('changed_by') -%}{{ return(none) }}{%- endif -%}
        {%- for name, column in input['changed_by'].items() -%}
            {%- set nodes = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
                            | selectattr('name', 'equalto', name) | list -%}
            {%- if nodes | length != 1 -%}
                {{ exceptions.raise_compiler_error("changed_by of " ~ this.identifier ~ " names " ~ name
                                                   ~ ", which is not one model of the project") }}
            {%- endif -%}
            {%- set node = nodes[0] -%}
            {%- if node.config.materialized == 'current_view' -%}
                {%- set parents = [] -%}
                {%- for uid in node.depends_on.nodes if uid.startswith('model.') %}{% do parents.append(uid) %}{% endfor -%}
                {%- set node = graph.nodes[parents[0]] -%}
            {%- endif -%}
            {%- if node.config.materialized not in ['system_versioned', 'current_state']
                   or (node.config.key | length) != 1 -%}
                {{ return(none) }}
            {%- endif -%}
            {%- set reader = api.Relation.create(database=target.database, schema=node.schema,
                                                 identifier=node.alias or node.name) -%}
            {%- set typed = adapter.get_columns_in_relation(reader) | selectattr('name', 'equalto', node.config.key[0])
                            | map(attribute='data_type') | list -%}
            {%- do found.append({'input': position, 'column': column, 'bronze': medallion.medallion_bronze_of_node(node),
                                 'key': node.config.key[0], 'type': typed[0] if typed else 'text',
                                 'watermark': node.schema ~ '.' ~ (node.alias or node.name)}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(found) -}}
{% endmacro %}


{% macro gold_capture_stretch_sql(seen, deps) %}
    {#- gold_stretch(model, lo, hi): per silver model the mart reads, the bronze positions it
        saw at its last build (lo; null: none yet) and the model's watermark now (hi), read
        once at the start: silver may move while the mart is built (a follower, another build),
        and what it applies after hi is the next build's stretch -#}
    drop table if exists gold_stretch;
    create temporary table gold_stretch on commit drop as
    select w.model, {{ 's.last_commit_lsn' if seen is not none else 'null::bigint' }} as lo, w.last_commit_lsn as hi
    from {{ medallion.medallion_watermark_relation() }} as w
    {%- if seen is not none %}
    left join {{ seen }} as s on s.model = w.model
    {%- endif %}
    where w.model in ({% for m in deps | map(attribute='watermark') | unique %}{{ medallion.medallion_literal(m) }}{{ ", " if not loop.last }}{% endfor %});
{% endmacro %}


{% macro gold_stretch_sql(dep) -%}
    {#- bronze positions of dep's model that the mart has not seen yet: (lo, hi] of gold_stretch -#}
    commit_lsn > (select lo from gold_stretch where model = {{ medallion.medallion_literal(dep.watermark) }})
    and commit_lsn <= (select hi from gold_stretch where model = {{ medallion.medallion_literal(dep.watermark) }})
{%- endmacro %}


{% macro gold_needs_full_sql(deps) %}
    {#- every line must be compared: a model the mart has not seen yet, or a truncate, a re-sync
        or a schema change in a stretch (their effects reach lines that bronze's keys do not name) -#}
    select exists (select from gold_stretch where lo is null)
        or {{ deps | map(attribute='watermark') | unique | list | length }} > (select count(*) from gold_stretch)
    {%- for dep in deps %}
        or exists (select from {{ dep.bronze }} where {{ medallion.gold_stretch_sql(dep) }} and op in ('T', 'E'))
        or exists (select from bronze.table_schema
                   where bronze_table = {{ medallion.medallion_literal(dep.bronze.identifier) }} and {{ medallion.gold_stretch_sql(dep) }})
    {%- endfor %}
{% endmacro %}


{% macro gold_touched_sql(basis, inputs, deps) %}
{#- gold_touched(input, line_key): the lines whose silver rows changed since the mart's last
    build, now (current lines holding a changed key) or then (basis lines holding one) -#}
drop table if exists gold_changed_keys, gold_touched;
create temporary table gold_changed_keys on commit drop as
{%- for dep in deps %}
select distinct {{ loop.index0 }} as dep, (image ->> {{ medallion.medallion_literal(dep.key) }}) as key_text
from (
    select full_row as image, commit_lsn from {{ dep.bronze }} where {{ medallion.gold_stretch_sql(dep) }}
    union all
    select old_row, commit_lsn from {{ dep.bronze }} where {{ medallion.gold_stretch_sql(dep) }} and old_row is not null
) as changes
where image ->> {{ medallion.medallion_literal(dep.key) }} is not null
{{- "\nunion all" if not loop.last }}
{%- endfor %};
analyze gold_changed_keys;

create temporary table gold_touched on commit drop as
{%- for dep in deps %}
{%- set input = inputs[dep.input] %}
{%- if dep.column == input['key'] %}
-- the changed key is the line's own key: the touched lines, now and then, are those keys (a key
-- with no line is compared with nothing and changes nothing)
select {{ dep.input + 1 }}::smallint as input, key_text::{{ dep.type }} as line_key
from gold_changed_keys where dep = {{ loop.index0 }}
{%- else %}
select {{ dep.input + 1 }}::smallint as input, {{ medallion.medallion_quote(input['key']) }} as line_key
from {{ ref(input['lines']) }}
-- typed as the column, so the planner joins the few keys first instead of filtering every line
where {{ medallion.medallion_quote(dep.column) }} in (select key_text::{{ dep.type }} from gold_changed_keys where dep = {{ loop.index0 }})
union
select input, line_key from {{ basis }}
where input = {{ dep.input + 1 }}
  and deps ->> {{ medallion.medallion_literal(dep.column) }} in (select key_text from gold_changed_keys where dep = {{ loop.index0 }})
{%- endif %}
{{- "\nunion" if not loop.last }}
{%- endfor %};
analyze gold_touched;
{% endmacro %}


{% macro gold_basis_indexes_sql(basis, grain, deps) %}
    {#- the basis's lookups: by group (gold_input reads the groups in scope) and, per changed_by
        entry, by the silver key (gold_touched finds the lines that held a changed key) -#}
    create index on {{ basis }} (input, {{ medallion.medallion_column_list(grain) }});
    {%- for dep in deps or [] %}
    create index on {{ basis }} (input, (deps ->> {{ medallion.medallion_literal(dep.column) }}));
    {%- endfor %}
{% endmacro %}


{% macro gold_seen_sql(seen) %}
    {#- the silver positions this build applied, for the next one (as captured at its start) -#}
    create table if not exists {{ seen }} (model text primary key, last_commit_lsn bigint not null);
    delete from {{ seen }};
    insert into {{ seen }} (model, last_commit_lsn)
    select model, hi from gold_stretch;
{% endmacro %}


{% macro gold_scope_sql(basis, grain, inputs, deps=none) %}
{#- gold_lines (the current lines compared), gold_changed (the lines that differ from the
    basis) and gold_scope (the groups to recompute); with deps, only the touched lines -#}
{%- set g = medallion.medallion_column_list(grain) -%}
{%- set old = [] -%}
{%- for column in grain %}{% do old.append('old_' ~ column) %}{% endfor -%}
-- sorting 2 x 16k Pagila lines spills at the default 4MB; hashing them in memory does not
set local work_mem = '64MB';
-- the line views join the facts: their cost estimate crosses jit_above_cost, and compiling
-- (~0.3 s a statement, measured) costs more than the few touched lines take to compute
set local jit = off;
drop table if exists gold_lines, gold_changed, gold_scope;
{%- if deps %}
{{ medallion.gold_touched_sql(basis, inputs, deps) }}
{%- endif %}

create temporary table gold_lines on commit drop as
{{ medallion.gold_lines_sql(grain, inputs, touched=deps is not none and deps) }};

create temporary table gold_changed on commit drop as
with current_lines as (
    select * from gold_lines
),

last_build as (
    select * from {{ basis }}
    {%- if deps %}
    where (input, line_key) in (select input, line_key from gold_touched)
    {%- endif %}
),

final as (
    -- lines that appeared, disappeared, or changed group, deps or a field the mart reads
    select
        coalesce(c.input, b.input) as input,
        coalesce(c.line_key, b.line_key) as line_key,
        {{ medallion.medallion_column_list(grain, 'c.') }},
        {%- for column in grain %}
        b.{{ medallion.medallion_quote(column) }} as {{ medallion.medallion_quote('old_' ~ column) }}{{ "," if not loop.last }}
        {%- endfor %}
    from current_lines as c
    full join last_build as b on b.input = c.input and b.line_key = c.line_key
    where c.fp is distinct from b.fp
)

select * from final;

create temporary table gold_scope on commit drop as
-- the group each such line is in now, and the one it counted in at the last build
select {{ g }} from gold_changed where {{ medallion.medallion_quote(grain[0]) }} is not null
union
select {{ medallion.medallion_column_list(old) }} from gold_changed where {{ medallion.medallion_quote(old[0]) }} is not null;
analyze gold_scope;
{% endmacro %}


{% macro gold_apply_sql(target_relation, basis_relation, g, mart_sql) %}
    {#- replaces the groups in scope: the basis's changed lines first (the mart's SQL reads its
        lines from the basis), then the mart's rows -#}
    delete from {{ basis_relation }} as b
    using gold_changed as ch
    where b.input = ch.input and b.line_key = ch.line_key;

    insert into {{ basis_relation }}
    select * from gold_lines
    where (input, line_key) in (select input, line_key from gold_changed);

    delete from {{ target_relation }} where ({{ g }}) in (select {{ g }} from gold_scope);

    insert into {{ target_relation }}
    select * from ({{ mart_sql }}) as mart
    order by {{ g }};
{% endmacro %}


{% materialization gold_mart, adapter='postgres' %}
    {#- a mart that names no inputs is one plain SQL file (plain_mart.sql) -#}
    {%- if config.get('inputs') is none -%}{{ return(medallion.gold_plain_build()) }}{%- endif -%}
    {%- set grain = config.require('grain') -%}
    {%- set inputs = config.require('inputs') -%}
    {%- set g = medallion.medallion_column_list(grain) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set basis_relation = medallion.gold_basis_relation(this) -%}
    {%- set seen_relation = medallion.gold_seen_relation(this) -%}
    {%- set deps = medallion.gold_dependencies(inputs) if execute else none -%}
    {%- set incremental = medallion.gold_mart_is_incremental() -%}
    {%- set existing_relation = load_cached_relation(this) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if not incremental %}
        {%- if existing_relation is not none %}
            {{ adapter.drop_relation(existing_relation) }}
        {%- endif %}
        {% do run_query("drop table if exists " ~ basis_relation ~ "; drop table if exists " ~ seen_relation) %}
        {%- if deps %}
            {% do run_query(medallion.gold_capture_stretch_sql(none, deps)) %}
        {%- endif %}
        {% call statement('main') -%}
            -- the basis first: the mart's SQL reads its lines from it (gold_input)
            create table {{ basis_relation }} as
            {{ medallion.gold_lines_sql(grain, inputs) }};
            alter table {{ basis_relation }} add primary key (input, line_key);
            {{ medallion.gold_basis_indexes_sql(basis_relation, grain, deps) }}
            -- the next build joins the basis with the few touched lines: plan it with statistics
            analyze {{ basis_relation }};
            comment on table {{ basis_relation }} is
                {{ medallion.medallion_literal('Bookkeeping of ' ~ this.identifier ~ ': per line, the group it counted in at the last build, the fields the mart reads, the silver keys it was made from and a fingerprint of them.') }};

            create table {{ target_relation }} as
            select * from ({{ sql }}) as mart
            order by {{ g }};
            alter table {{ target_relation }} add primary key ({{ g }});
            {%- if deps %}
            {{ medallion.gold_seen_sql(seen_relation) }}
            {%- endif %}
        {%- endcall %}
        {#- `medallion run --follow` needs an incremental build to store its step (follow.sql) -#}
        {% do medallion.medallion_store_follow_step(target_relation, 2, lock_sql="select 1", step_sql=none) %}
    {%- else %}
        {#- one build at a time per mart; what silver holds now, read once (gold_capture_stretch_sql) -#}
        {%- set seen_exists = deps and load_relation(seen_relation) is not none -%}
        {%- set lock = "lock table " ~ target_relation ~ " in share row exclusive mode;\n"
                       ~ (medallion.gold_capture_stretch_sql(seen_relation if seen_exists else none, deps) if deps else '') -%}
        {% do run_query(lock) %}
        {%- set touched_deps = none -%}
        {%- if seen_exists and not run_query(medallion.gold_needs_full_sql(deps)).columns[0].values()[0] -%}
            {%- set touched_deps = deps -%}
        {%- endif %}
        {#- rendered once each: the build runs them, and `medallion run --follow` (follow.sql) runs
            the touched-lines scope and the same apply for its next batches (a stretch that needs
            every line compared goes to a dbt build) -#}
        {%- set touched_scope = medallion.gold_scope_sql(basis_relation, grain, inputs, deps) -%}
        {%- set apply = medallion.gold_apply_sql(target_relation, basis_relation, g, sql)
                        ~ (medallion.gold_seen_sql(seen_relation) if deps else '') -%}
        {% do run_query(touched_scope if touched_deps or not deps else medallion.gold_scope_sql(basis_relation, grain, inputs, none)) %}
        {% call statement('main') -%}
            {{ apply }}
        {%- endcall %}
        {%- set step = touched_scope ~ apply -%}
        {% do medallion.medallion_store_follow_step(target_relation, 2,
            lock_sql="lock table " ~ target_relation ~ " in share row exclusive mode;\n"
                     ~ (medallion.gold_capture_stretch_sql(seen_relation, deps) if deps else ''),
            step_sql=step, needs_build_sql=(medallion.gold_needs_full_sql(deps) if deps else none)) %}
    {%- endif %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
