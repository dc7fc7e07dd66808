{#-
    Schema changes in the source, as silver follows them. bronze.table_schema holds each captured
    table's schema over time, each entry positioned in the change stream at (commit_lsn, ordinal)
    with the commit time of the DDL that made it (see medallion/bronze/ddl.py). From it:

    - the history's columns: every column the table ever had, under the name it had (a dropped
      column stays: its values up to the drop are history), with its latest type, which must
      hold every earlier one (widening: int -> bigint, varchar(n) -> text, numeric(p,s) -> larger,
      ...); medallion.toml's column_types can name a type that holds both when it does not;
    - the physical order of the columns: those of the first schema, sys_start, sys_end, then the
      columns added later in the order they appeared (ALTER TABLE ADD COLUMN appends), so an
      incremental build and a full refresh make the very same table;
    - schema events: the entries that change rows' content without a row change in the WAL. At
      the DDL's commit time every current version is closed and reopened with the new content:
      ADD COLUMN ... DEFAULT gives existing rows the default; DROP COLUMN leaves the column null
      from then on; RENAME COLUMN moves the value to the new name (the old one is null from then
      on); DROP TABLE ends every current version.
-#}

{% macro medallion_timeline(bronze_relation, renames=none) %}
    {#- [{lsn, ordinal, ts, event, columns: [{name, attnum, warehouse_type, missing, ...}]}] in stream order;
        columns under their silver names (renames: medallion.toml's column_names, the model's unless given) -#}
    {%- set result = run_query(
        "select commit_lsn, ordinal, commit_ts::text, event, columns::text, recorded_at::text from bronze.table_schema "
        ~ "where bronze_table = " ~ medallion.medallion_literal(bronze_relation.identifier)
        ~ " order by commit_lsn, ordinal") -%}
    {%- set timeline = [] -%}
    {%- for lsn, ordinal, ts, event, columns, recorded_at in result.rows -%}
        {%- do timeline.append({'lsn': lsn | int, 'ordinal': ordinal | int, 'ts': ts, 'event': event,
                                'columns': fromjson(columns), 'known': recorded_at}) -%}
    {%- endfor -%}
    {%- if not timeline -%}
        {{ exceptions.raise_compiler_error("bronze has no recorded schema for " ~ bronze_relation
                                           ~ ": run 'medallion ingest' first") }}
    {%- endif -%}
    {{- return(medallion.medallion_renamed_timeline(timeline, renames)) -}}
{% endmacro %}


{% macro medallion_renamed_timeline(timeline, renames=none) %}
    {#- the timeline with each column renamed as medallion.toml's column_names says (a source column
        whose name silver uses for itself, sys_start say), its source name kept in `source` -#}
    {%- set renames = renames if renames is not none else (config.get('column_names') or {}) -%}
    {%- for entry in timeline -%}
        {%- for column in entry.columns if column.name in renames -%}
            {%- do column.update({'source': column.name, 'name': renames[column.name]}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(timeline) -}}
{% endmacro %}


{% macro medallion_type_parts(type) %}
    {#- 'numeric(6,2)' -> ('numeric', [6, 2]); 'character varying(40)' -> ('character varying', [40]) -#}
    {%- set base = type.split('(')[0] | trim -%}
    {%- set mods = [] -%}
    {%- if '(' in type -%}
        {%- for part in type.split('(')[1].split(')')[0].split(',') -%}{%- do mods.append(part | trim | int) -%}{%- endfor -%}
    {%- endif -%}
    {{- return((base, mods, type.split(')')[-1] if ')' in type else '')) -}}
{% endmacro %}


{% macro medallion_widens(old, new) %}
    {#- Does every value of type old fit type new, unchanged? -#}
    {%- if old == new or new == 'text' -%}{{ return(true) }}{%- endif -%}
    {%- set o = medallion.medallion_type_parts(old) -%}
    {%- set n = medallion.medallion_type_parts(new) -%}
    {%- set integers = ['smallint', 'integer', 'bigint', 'numeric'] -%}
    {%- if o[2] != n[2] -%}{{ return(false) }}{%- endif -%}  {#- arrays only widen to arrays -#}
    {%- if o[0] in integers and n[0] in integers and integers.index(n[0]) >= integers.index(o[0]) and not n[1] -%}
        {{ return(true) }}
    {%- endif -%}
    {%- if o[0] in ['real', 'double precision'] and n[0] == 'double precision' -%}{{ return(true) }}{%- endif -%}
    {%- if o[0] == n[0] and o[0] in ['character varying', 'character', 'bit varying', 'time without time zone',
                                     'timestamp without time zone', 'timestamp with time zone', 'interval'] -%}
        {{ return(not n[1] or (o[1] and n[1][0] >= o[1][0])) }}
    {%- endif -%}
    {%- if o[0] == 'character' and n[0] == 'character varying' -%}{{ return(not n[1] or (o[1] and n[1][0] >= o[1][0])) }}{%- endif -%}
    {%- if o[0] == 'numeric' and n[0] == 'numeric' -%}
        {%- if not n[1] -%}{{ return(true) }}{%- endif -%}
        {%- if not o[1] -%}{{ return(false) }}{%- endif -%}
        {%- set o_scale = o[1][1] if o[1] | length > 1 else 0 -%}
        {%- set n_scale = n[1][1] if n[1] | length > 1 else 0 -%}
        {{ return(n_scale >= o_scale and n[1][0] - n_scale >= o[1][0] - o_scale) }}
    {%- endif -%}
    {{- return(false) -}}
{% endmacro %}


{% macro medallion_history_columns(timeline, relation, overrides=none) %}
    {#- {'first': [names of the first schema], 'added': [names added later], 'types': {name: type}}:
        every column the table ever had, with the type the history keeps it in (overrides: the
        model's column_types from medallion.toml, unless given). -#}
    {%- set overrides = overrides if overrides is not none else (config.get('column_types') or {}) -%}
    {%- set first, added, types = [], [], {} -%}
    {%- for entry in timeline -%}
        {%- set is_first = loop.first -%}
        {%- for column in entry.columns -%}
            {%- set name = column.name -%}
            {%- if name not in types -%}
                {%- do (first if is_first else added).append(name) -%}
            {%- endif -%}
            {%- set previous = types.get(name) -%}
            {%- if previous is not none and previous != column.warehouse_type and name not in overrides
                   and not medallion.medallion_widens(previous, column.warehouse_type) -%}
                {{ exceptions.raise_compiler_error(
                    relation.identifier ~ ": column " ~ name ~ " of " ~ config.require('source_table')
                    ~ " changed type from " ~ previous ~ " to " ~ column.warehouse_type
                    ~ ", which the history cannot hold in place: set column_types = { " ~ name
                    ~ " = \"text\" } (or another type that holds both) under [tables.\""
                    ~ config.require('source_table') ~ "\"] in medallion.toml, then run medallion build") }}
            {%- endif -%}
            {%- do types.update({name: overrides.get(name, column.warehouse_type)}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return({'first': first, 'added': added, 'types': types}) -}}
{% endmacro %}


{% macro medallion_ordered_columns(history_columns) %}
    {#- {name: type} in the history's column order -#}
    {%- set ordered = {} -%}
    {%- for name in history_columns['first'] + history_columns['added'] -%}
        {%- do ordered.update({name: history_columns['types'][name]}) -%}
    {%- endfor -%}
    {{- return(ordered) -}}
{% endmacro %}


{% macro medallion_typed_literal(value, type) -%}
    {{ medallion.medallion_typed(medallion.medallion_literal(value), type) }}
{%- endmacro %}


{% macro medallion_schema_changes(timeline) %}
    {#- What each DDL in the timeline does to rows' content, engine-neutral: [{lsn, ordinal, ts,
        known, drop, changes: [{name, kind, column, was}]}] in stream order, where kind is
        'renamed' (the value moves from `was`), 'retyped' (the table was rewritten, each value
        converted by the default conversion: an ALTER ... USING an expression of its own is not
        in the WAL), 'default' (added with a default that existing rows now hold, with no rewrite
        and no WAL) or 'gone' (dropped or renamed away: null from then on). Each engine renders
        the SQL (medallion_schema_events, through medallion_schema_change_sql per engine). -#}
    {%- set events = [] -%}
    {%- for entry in timeline[1:] -%}
        {%- set before = timeline[loop.index0] -%}
        {%- if entry.event == 'drop' -%}
            {%- do events.append({'lsn': entry.lsn, 'ordinal': entry.ordinal, 'ts': entry.ts, 'known': entry.known,
                                  'drop': true, 'changes': []}) -%}
        {%- elif before.event != 'drop' -%}
            {%- set old_by_number, old_names, new_names, changes, named = {}, [], [], [], [] -%}
            {%- for c in before.columns -%}{%- do old_by_number.update({c.attnum: c}) -%}{%- do old_names.append(c.name) -%}{%- endfor -%}
            {%- for c in entry.columns -%}{%- do new_names.append(c.name) -%}{%- endfor -%}
            {%- for c in entry.columns -%}
                {%- set was = old_by_number.get(c.attnum) if c.attnum else none -%}
                {%- if was is not none and was.name != c.name -%}
                    {%- do changes.append({'name': c.name, 'kind': 'renamed', 'column': c, 'was': was}) -%}{%- do named.append(c.name) -%}
                    {%- if was.name not in new_names -%}
                        {%- do changes.append({'name': was.name, 'kind': 'gone', 'column': was, 'was': was}) -%}{%- do named.append(was.name) -%}
                    {%- endif -%}
                {%- elif was is not none and was.warehouse_type != c.warehouse_type -%}
                    {%- do changes.append({'name': c.name, 'kind': 'retyped', 'column': c, 'was': was}) -%}{%- do named.append(c.name) -%}
                {%- elif was is none and c.name not in old_names and c.missing is not none -%}
                    {%- do changes.append({'name': c.name, 'kind': 'default', 'column': c, 'was': none}) -%}{%- do named.append(c.name) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- for c in before.columns -%}
                {%- if c.name not in new_names and c.name not in named -%}
                    {%- do changes.append({'name': c.name, 'kind': 'gone', 'column': c, 'was': c}) -%}{%- do named.append(c.name) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if changes -%}
                {%- do events.append({'lsn': entry.lsn, 'ordinal': entry.ordinal, 'ts': entry.ts, 'known': entry.known,
                                      'drop': false, 'changes': changes}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(events) -}}
{% endmacro %}


{% macro medallion_schema_events(timeline, types) %}
    {#- medallion_schema_changes with the engine's SQL in `set`: {column: SQL over the version's columns} -#}
    {%- set events = [] -%}
    {%- for event in medallion.medallion_schema_changes(timeline) -%}
        {%- set sql_of = {} -%}
        {%- for change in event.changes -%}
            {%- do sql_of.update({change.name: medallion.medallion_schema_change_sql(change, types)}) -%}
        {%- endfor -%}
        {%- do events.append({'lsn': event.lsn, 'ordinal': event.ordinal, 'ts': event.ts, 'known': event.known,
                              'drop': event.drop, 'set': sql_of}) -%}
    {%- endfor -%}
    {{- return(events) -}}
{% endmacro %}


{% macro medallion_schema_change_sql(change, types) %}
    {#- one column's new content after a schema change, per engine (Spark's: spark/schema_evolution.sql) -#}
    {{- return(adapter.dispatch('medallion_schema_change_sql', 'medallion')(change, types)) -}}
{% endmacro %}


{% macro default__medallion_schema_change_sql(change, types) %}
    {%- set c = change.column -%}
    {%- if change.kind in ('renamed', 'retyped') -%}
        {#- the source's conversion to its new type, then the history's type when medallion.toml's
            column_types keeps the column in another (text after a narrowing change, say): an
            expression of the source's type compared with or stored in a column of another fails -#}
        {%- set converted = medallion.medallion_typed(medallion.medallion_quote(change.was.name if change.kind == 'renamed' else c.name)
                                            ~ '::text', c.warehouse_type) -%}
        {%- if types[c.name] != c.warehouse_type -%}
            {%- set converted = medallion.medallion_typed(converted ~ '::text', types[c.name]) -%}
        {%- endif -%}
        {{- return(converted) -}}
    {%- elif change.kind == 'default' -%}
        {{- return(medallion.medallion_typed_literal(c.missing, types[c.name])) -}}
    {%- endif -%}
    {#- gone, typed: an untyped null is text, which an array or a number column refuses -#}
    {{- return('null::' ~ types[change.name]) -}}
{% endmacro %}


{% macro medallion_evolve_sql(relation, existing_columns, columns) %}
    {#- Bring an existing table to the history's columns: add the missing ones (appended), widen
        the types that changed. Views over the table are dropped first when a type changes (a
        view pins its columns' types); the build recreates silver's own and the project's. -#}
    {%- set have = {} -%}
    {%- for c in existing_columns -%}{%- do have.update({c.name: c.data_type}) -%}{%- endfor -%}
    {%- set statements = [] -%}
    {%- set retype = [] -%}
    {%- for name in columns['first'] + columns['added'] -%}
        {%- set type = columns['types'][name] -%}
        {%- if name not in have -%}
            {%- do statements.append("alter table " ~ relation ~ " add column " ~ medallion.medallion_quote(name) ~ " " ~ type) -%}
        {%- else -%}
            {%- do retype.append(name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if retype -%}
        {%- set actual = run_query(
            "select attname, format_type(atttypid, atttypmod) from pg_attribute where attrelid = "
            ~ medallion.medallion_literal(relation.include(database=False)) ~ "::regclass and attnum > 0 and not attisdropped") -%}
        {%- set current = {} -%}
        {%- for name, type in actual.rows -%}{%- do current.update({name: type}) -%}{%- endfor -%}
        {%- set altered = [] -%}
        {%- for name in retype -%}
            {%- if current.get(name) != columns['types'][name] -%}
                {%- do altered.append("alter table " ~ relation ~ " alter column " ~ medallion.medallion_quote(name) ~ " type "
                                      ~ columns['types'][name] ~ " using " ~ medallion.medallion_quote(name) ~ "::" ~ columns['types'][name]) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if altered -%}
            {%- do statements.append(medallion.medallion_drop_dependent_views_sql(relation)) -%}
            {%- do statements.extend(altered) -%}
        {%- endif -%}
    {%- endif -%}
    {{- return(statements | join(";\n")) -}}
{% endmacro %}


{% macro medallion_drop_dependent_views_sql(relation) %}
do $drop_views$
declare
    view regclass;
begin
    for view in
        select distinct rw.ev_class::regclass
        from pg_depend as d
        join pg_rewrite as rw on rw.oid = d.objid
        where d.refobjid = {{ medallion.medallion_literal(relation.include(database=False)) }}::regclass
          and rw.ev_class <> d.refobjid
    loop
        execute format('drop view if exists %s cascade', view);
    end loop;
end
$drop_views$
{% endmacro %}


{% macro system_versioned_event_sql(relation, key, columns, event) %}
{#- Apply one schema event to the history at the DDL's commit time (see the top of this file). -#}
{%- set all = columns['first'] + columns['added'] -%}
{%- set keys = medallion.medallion_column_list(key) -%}
{%- set ts = medallion.medallion_literal(event.ts) ~ "::timestamptz" -%}
{%- set known = medallion.medallion_literal(event.known) ~ "::timestamptz" -%}
{%- if event.drop %}
-- the table was dropped: its current versions end here (one that began in the same transaction
-- never showed; one whose start is later by the clock ends just after it)
delete from {{ relation }} where sys_end = 'infinity' and sys_start = {{ ts }};
update {{ relation }} set sys_end = greatest({{ ts }}, sys_start + interval '1 microsecond'), sys_known_to = {{ known }}
where sys_end = 'infinity';
{%- else %}
drop table if exists medallion_changed;
create temporary table medallion_changed on commit drop as
select
    {%- for name in all %}
    {{ event.set[name] if name in event.set else medallion.medallion_quote(name) }} as {{ medallion.medallion_quote(name) }},
    {%- endfor %}
    sys_start,
    greatest({{ ts }}, sys_start + interval '1 microsecond') as _m_event_ts
from {{ relation }}
where sys_end = 'infinity'
  and row({% for name in event.set %}{{ medallion.medallion_quote(name) }}{{ ", " if not loop.last }}{% endfor %}, null)
      is distinct from row({% for name in event.set %}{{ event.set[name] }}{{ ", " if not loop.last }}{% endfor %}, null);

-- versions that began at this very instant take the new content in place (never visible otherwise)
update {{ relation }} as h set
    {%- for name in event.set %}
    {{ medallion.medallion_quote(name) }} = c.{{ medallion.medallion_quote(name) }}{{ "," if not loop.last }}
    {%- endfor %}
from medallion_changed as c
where {% for k in key %}h.{{ medallion.medallion_quote(k) }} = c.{{ medallion.medallion_quote(k) }} and {% endfor -%}
      h.sys_end = 'infinity' and h.sys_start = {{ ts }} and c.sys_start = {{ ts }};

update {{ relation }} as h set sys_end = c._m_event_ts, sys_known_to = {{ known }}
from medallion_changed as c
where {% for k in key %}h.{{ medallion.medallion_quote(k) }} = c.{{ medallion.medallion_quote(k) }} and {% endfor -%}
      h.sys_end = 'infinity' and h.sys_start <> {{ ts }};

insert into {{ relation }} ({{ medallion.medallion_column_list(all) }}, sys_start, sys_end, sys_known_from, sys_known_to)
select {{ medallion.medallion_column_list(all) }}, _m_event_ts, 'infinity', {{ known }}, 'infinity'
from medallion_changed
where sys_start <> {{ ts }}
order by {{ keys }};
{%- endif %}
{% endmacro %}


{% macro current_state_event_sql(relation, event) %}
{#- Apply one schema event to a current-state table: the rows take the DDL's new content. -#}
{%- if event.drop %}
delete from {{ relation }};
{%- else %}
update {{ relation }} set
    {%- for name in event.set %}
    {{ medallion.medallion_quote(name) }} = {{ event.set[name] }}{{ "," if not loop.last }}
    {%- endfor %};
{%- endif %}
{% endmacro %}
