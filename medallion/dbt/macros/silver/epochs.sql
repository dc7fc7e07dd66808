{#-
    Re-sync epochs. After a lost slot, `medallion resync` writes into a bronze table one E row and
    the table's rows as R rows, all at one commit_lsn: an observation of the whole table at the
    re-sync time (medallion/bronze/resync.py). Silver applies it as such, between the changes
    before and after it: a current version whose key is not among the rows ended during the gap
    (it ends at the re-sync time), a row that differs from its current version (or is new)
    starts a version then, and a row that is the same continues untouched. History before the
    gap is never rewritten.
-#}

{% macro medallion_epochs(bronze_relation, lo, hi) %}
    {#- [{lsn, ordinal: 0, ts, epoch: true}] of the re-syncs in (lo, hi] -#}
    {%- set result = run_query(
        "select commit_lsn, commit_ts::text, load_ts::text from " ~ bronze_relation ~ " where op = 'E' and commit_lsn > " ~ lo
        ~ " and commit_lsn <= " ~ hi ~ " order by commit_lsn") -%}
    {%- set epochs = [] -%}
    {%- for lsn, ts, known in result.rows -%}
        {%- do epochs.append({'lsn': lsn | int, 'ordinal': 0, 'ts': ts, 'known': known, 'epoch': true,
                              'drop': false, 'set': {}}) -%}
    {%- endfor -%}
    {{- return(epochs) -}}
{% endmacro %}


{% macro medallion_steps(events, epochs) %}
    {#- schema events and epochs, in stream order -#}
    {{- return((events + epochs) | sort(attribute='ordinal') | sort(attribute='lsn')) -}}
{% endmacro %}


{% macro medallion_epoch_stage_sql(feed_sql, epoch) %}
drop table if exists medallion_epoch;
create temporary table medallion_epoch on commit drop as
select * from ({{ feed_sql }}) as feed
where _m_lsn = {{ epoch.lsn }} and _m_op = 'R';
analyze medallion_epoch;
{% endmacro %}


{% macro system_versioned_epoch_sql(relation, feed_sql, key, columns, epoch) %}
{%- set cols = medallion.medallion_column_list(columns.keys()) -%}
{%- set ts = medallion.medallion_literal(epoch.ts) ~ "::timestamptz" -%}
{%- set known = medallion.medallion_literal(epoch.known) ~ "::timestamptz" -%}
{%- set match -%}
{% for k in key %}h.{{ medallion.medallion_quote(k) }} = e.{{ medallion.medallion_quote(k) }}{{ " and " if not loop.last }}{% endfor %}
{%- endset -%}
{{ medallion.medallion_epoch_stage_sql(feed_sql, epoch) }}

-- not among the re-sync's rows: the row was gone by then, its version ends at the re-sync
update {{ relation }} as h set sys_end = greatest({{ ts }}, h.sys_start + interval '1 microsecond'),
                              sys_known_to = {{ known }}
where h.sys_end = 'infinity'
  and not exists (select from medallion_epoch as e where {{ match }});

-- new, or not as its current version says: a version from the re-sync on
drop table if exists medallion_epoch_changed;
create temporary table medallion_epoch_changed on commit drop as
select {{ medallion.medallion_column_list(columns.keys(), 'e.') }},
       greatest({{ ts }}, h.sys_start + interval '1 microsecond') as _m_event_ts
from medallion_epoch as e
left join {{ relation }} as h on {{ match }} and h.sys_end = 'infinity'
where h.sys_start is null
   or row({{ medallion.medallion_column_list(columns.keys(), 'h.') }})::text
      is distinct from row({{ medallion.medallion_column_list(columns.keys(), 'e.') }})::text;

update {{ relation }} as h set sys_end = e._m_event_ts, sys_known_to = {{ known }}
from medallion_epoch_changed as e
where {{ match }} and h.sys_end = 'infinity';

insert into {{ relation }} ({{ cols }}, sys_start, sys_end, sys_known_from, sys_known_to)
select {{ cols }}, _m_event_ts, 'infinity', {{ known }}, 'infinity' from medallion_epoch_changed
order by {{ medallion.medallion_column_list(key) }};
{% endmacro %}


{% macro current_state_epoch_sql(relation, key, columns, epoch) %}
{%- set cols = medallion.medallion_column_list(columns.keys()) -%}
{%- set match -%}
{% for k in key %}r.{{ medallion.medallion_quote(k) }} = e.{{ medallion.medallion_quote(k) }}{{ " and " if not loop.last }}{% endfor %}
{%- endset -%}
-- gone during the gap, or no longer as it was: out; new or changed rows: in, as of the re-sync
delete from {{ relation }} as r
where not exists (
    select from medallion_epoch as e
    where {{ match }}
      and row({{ medallion.medallion_column_list(columns.keys(), 'r.') }})::text
          = row({{ medallion.medallion_column_list(columns.keys(), 'e.') }})::text);

insert into {{ relation }} ({{ cols }}, last_commit_ts, source_table)
select {{ medallion.medallion_column_list(columns.keys(), 'e.') }}, {{ medallion.medallion_literal(epoch.ts) }}::timestamptz, e._m_source_table
from medallion_epoch as e
where not exists (select from {{ relation }} as r where {{ match }})
order by {{ medallion.medallion_column_list(key, 'e.') }};
{% endmacro %}
