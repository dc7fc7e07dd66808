{% macro medallion_quote(name) -%}
    {#- a quoted identifier; embedded double quotes doubled (adapter.quote does not) -#}
    "{{ name | replace('"', '""') }}"
{%- endmacro %}


{% macro medallion_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}


{% macro medallion_column_list(names, prefix='') -%}
    {%- for name in names -%}{{ prefix }}{{ medallion.medallion_quote(name) }}{{ ", " if not loop.last }}{%- endfor -%}
{%- endmacro %}


{% macro medallion_columns(bronze_relation) %}
    {#- {column: warehouse type} of every column the table ever had, in the history's order, from
        bronze's record of the source's schema over time (see schema_evolution.sql) -#}
    {{- return(medallion.medallion_ordered_columns(medallion.medallion_history_columns(medallion.medallion_timeline(bronze_relation), this))) -}}
{% endmacro %}


{% macro system_versioned_create_sql(relation, key, columns) %}
{%- set prefix = config.get('object_prefix') or relation.identifier -%}
{%- set keys = medallion.medallion_column_list(key) -%}
create table {{ relation }} (
    {%- for column, type in columns.items() %}
    {{ medallion.medallion_quote(column) }} {{ type }}{{ " not null" if column in key }},
    {%- endfor %}
    sys_start      timestamptz not null,                      -- source time: valid from (commit time)
    sys_end        timestamptz not null default 'infinity',   -- ... until (exclusive)
    sys_known_from timestamptz not null,                      -- warehouse time: loaded into bronze
    sys_known_to   timestamptz not null default 'infinity',   -- ... until its end was loaded
    constraint {{ medallion.medallion_quote(prefix ~ '_pkey') }} primary key ({{ keys }}, sys_start),
    constraint {{ medallion.medallion_quote(prefix ~ '_period') }} check (sys_start < sys_end)
);
-- at most one current version per key
create unique index {{ medallion.medallion_quote(prefix ~ '_one_current') }}
    on {{ relation }} ({{ keys }}) where sys_end = 'infinity';
create index {{ medallion.medallion_quote(prefix ~ '_period_idx') }}
    on {{ relation }} ({{ keys }}, sys_start, sys_end);
{% endmacro %}


{% macro system_versioned_exclusion_sql(relation, key) %}
{#- No two versions of a key overlap: a btree_gist exclusion constraint, when every key column's
    type has a GiST operator class (arrays, jsonb and the like do not; the build's
    no_overlapping_versions test still checks them). -#}
{%- set prefix = config.get('object_prefix') or relation.identifier -%}
do $exclusion$
begin
    if not exists (
        select from pg_attribute as a
        where a.attrelid = {{ medallion.medallion_literal(relation.include(database=False)) }}::regclass
          and a.attname = any(array[{% for k in key %}{{ medallion.medallion_literal(k) }}{{ ", " if not loop.last }}{% endfor %}]::name[])
          and not exists (
              select from pg_opclass as o
              join pg_am as m on m.oid = o.opcmethod
              where m.amname = 'gist' and o.opcdefault
                and (o.opcintype = a.atttypid
                     or exists (select from pg_cast as c where c.castsource = a.atttypid
                                and c.casttarget = o.opcintype and c.castmethod = 'b')))
    ) then
        alter table {{ relation }} add constraint {{ medallion.medallion_quote(prefix ~ '_no_overlap') }}
            exclude using gist (
                {%- for column in key %}{{ medallion.medallion_quote(column) }} with =, {% endfor -%}
                tstzrange(sys_start, sys_end) with &&);
    end if;
end
$exclusion$;
{% endmacro %}


{% macro system_versioned_as_of_sql(relation) %}
{#- <base>_as_of(ts): the rows valid at ts, i.e. sys_start <= ts < sys_end.
    language sql + stable + a single select: the planner inlines it into the calling query. -#}
{%- set bare = relation.include(database=False) -%}
{%- set function = config.get('as_of') or relation.identifier ~ '_as_of' -%}
create or replace function {{ medallion.medallion_quote(relation.schema) }}.{{ medallion.medallion_quote(function) }}(ts timestamptz)
returns setof {{ bare }}
language sql stable
as $as_of$
    -- plain comparisons, not tstzrange(...) @> ts: with a key filter the btree
    -- (key, sys_start, sys_end) answers a point lookup in well under a millisecond, where
    -- the GiST exclusion index took ~20 ms on a million versions (make bench)
    select * from {{ bare }} where sys_start <= ts and sys_end > ts
$as_of$;
comment on function {{ medallion.medallion_quote(relation.schema) }}.{{ medallion.medallion_quote(function) }}(timestamptz) is
    {{ medallion.medallion_literal('The rows of ' ~ relation.identifier ~ ' valid at ts (sys_start <= ts < sys_end).') }};

-- as of ts, as known at `known` (call it with known => k): the versions the warehouse had
-- loaded by then, each ending where it was known to end then (a later-loaded end is ignored)
create or replace function {{ medallion.medallion_quote(relation.schema) }}.{{ medallion.medallion_quote(function) }}(ts timestamptz, known timestamptz)
returns setof {{ bare }}
language sql stable
as $as_of_known$
    select * from {{ bare }}
    where sys_start <= ts and sys_known_from <= known and (sys_end > ts or sys_known_to > known)
$as_of_known$;
comment on function {{ medallion.medallion_quote(relation.schema) }}.{{ medallion.medallion_quote(function) }}(timestamptz, timestamptz) is
    {{ medallion.medallion_literal('The rows of ' ~ relation.identifier ~ ' valid at ts as the warehouse knew them at known.') }};
{% endmacro %}


{% macro medallion_range(after, before) -%}
    {#- bronze rows strictly between two stream positions (commit_lsn, ordinal): an index range scan -#}
    (_m_lsn, _m_ordinal) > ({{ after[0] }}, {{ after[1] }}) and (_m_lsn, _m_ordinal) < ({{ before[0] }}, {{ before[1] }})
{%- endmacro %}


{% macro system_versioned_stage_sql(relation, feed_sql, key, after, before) %}
{#- The bronze rows this step applies: those strictly between two stream positions. -#}
drop table if exists medallion_feed, medallion_seed_tables;
create temporary table medallion_feed on commit drop as
select * from ({{ feed_sql }}) as feed
where {{ medallion.medallion_range(after, before) }};
analyze medallion_feed;

-- the source relation of each reopened version; needed only when a truncate names one
-- partition of a partitioned source (filled by system_versioned_seed_tables_sql)
create temporary table medallion_seed_tables on commit drop as
select {{ medallion.medallion_column_list(key) }}, _m_source_table from medallion_feed with no data;
{% endmacro %}


{% macro system_versioned_seed_tables_sql(feed_sql, key, after) %}
{#- Where each key's row lived before this batch: its latest change up to lo. One pass over
    bronze, paid only in a batch that truncates a single partition (rare). -#}
{%- set keys = medallion.medallion_column_list(key) -%}
insert into medallion_seed_tables
select distinct on ({{ keys }}) {{ keys }}, _m_source_table
from ({{ feed_sql }}) as feed
where (_m_lsn, _m_ordinal) <= ({{ after[0] }}, {{ after[1] }}) and _m_op not in ('T', 'E')
order by {{ keys }}, _m_lsn desc, _m_ordinal desc;
analyze medallion_seed_tables;
{% endmacro %}


{% macro system_versioned_key_check_sql(relation, key, source_root) %}
{#- A key declared in medallion.toml is checked, not trusted: two rows live at once under it (two
    snapshot rows, or an insert while the key's row is live: neither a delete, a truncate nor a
    re-sync came between) fail the step in one line naming the table, the key and one value.
    Reads only the staged batch and the current versions of the keys it inserts. -#}
{%- set keys = medallion.medallion_column_list(key) -%}
{%- set key_names = key | join(', ') -%}
do $key_check$
declare
    duplicate text;
begin
    with arrivals as (
        select {{ keys }}, _m_lsn, _m_ordinal, _m_op from medallion_feed where _m_op in ('R', 'I', 'U', 'D')
        union all
        select {{ keys }}, 0::bigint, 0, 'S'::char(1) from {{ relation }}
        where sys_end = 'infinity'
          and ({{ keys }}) in (select {{ keys }} from medallion_feed where _m_op in ('R', 'I'))
    ),
    ordered as (
        select arrivals.*,
               lag(_m_op) over by_key as _m_previous_op,
               lag(_m_lsn) over by_key as _m_previous_lsn,
               lag(_m_ordinal) over by_key as _m_previous_ordinal
        from arrivals
        window by_key as (partition by {{ keys }} order by _m_lsn, _m_ordinal)
    )
    select row({{ keys }})::text into duplicate
    from ordered as o
    where o._m_op in ('R', 'I') and o._m_previous_op is not null and o._m_previous_op <> 'D'
      and not exists (select from medallion_feed as t
                      where t._m_op in ('T', 'E')
                        and (t._m_lsn, t._m_ordinal) > (o._m_previous_lsn, o._m_previous_ordinal)
                        and (t._m_lsn, t._m_ordinal) < (o._m_lsn, o._m_ordinal))
    limit 1;
    if duplicate is not null then
        raise exception '%', {{ medallion.medallion_literal(
            source_root ~ ": the key (" ~ key_names ~ ") declared in medallion.toml is not unique: two rows with ("
            ~ key_names ~ ") = ") }} || duplicate || {{ medallion.medallion_literal(
            ' are live at once; set key under [tables."' ~ source_root ~ '"] to columns that identify one row, '
            ~ 'then run medallion build --full-refresh') }};
    end if;
end
$key_check$;
{% endmacro %}


{% macro system_versioned_apply_sql(relation, key, columns, source_root) %}
{#- Applies the staged bronze rows: closes the current versions they end and appends the
    versions they open. A full refresh is the same with lo = -1 on an empty table, so
    incremental and full builds run the very same statements. -#}
{%- set keys = medallion.medallion_column_list(key) -%}
{%- set cols = medallion.medallion_column_list(columns.keys()) -%}
-- a batch's statements touch few rows but their estimates can cross jit_above_cost, and
-- compiling them took up to a second (measured at Pagila x10) for a few milliseconds of work
set local jit = off;
drop table if exists medallion_versions;
create temporary table medallion_versions on commit drop as
select {{ cols }}, sys_start, sys_end, sys_known_from, sys_known_to from {{ relation }} with no data;

with truncates as materialized (
    -- few or none: looked up once per version
    select _m_lsn, _m_ordinal, _m_ts, _m_load_ts, _m_source_table from medallion_feed where _m_op = 'T'
),

key_changes as (
    -- one change per key and transaction: its last (nobody could see the states in between)
    select distinct on ({{ keys }}, _m_lsn) _m_lsn, _m_ordinal, _m_op, _m_ts, _m_load_ts, _m_source_table, {{ cols }}
    from medallion_feed
    where _m_op <> 'T'
    order by {{ keys }}, _m_lsn, _m_ordinal desc
),

reopened_changed as (
    -- the current versions this batch may end: of the keys it changes (an index lookup each) ...
    delete from {{ relation }}
    where sys_end = 'infinity'
      and ({{ keys }}) in (select {{ keys }} from key_changes)
    returning {{ cols }}, sys_start, sys_known_from
),

reopened_truncated as (
    -- ... and, after a truncate, every other one. Two statements, not one with an OR: with the
    -- OR the lookup by key became a scan of the whole table (80 ms at Pagila x10, for 100 keys),
    -- and without a truncate this one does not read the table at all
    delete from {{ relation }} as r
    where exists (select from truncates)
      and r.sys_end = 'infinity'
      and not exists (select from key_changes as k
                      where {% for k in key %}k.{{ medallion.medallion_quote(k) }} = r.{{ medallion.medallion_quote(k) }}{{ " and " if not loop.last }}{% endfor %})
    returning {{ medallion.medallion_column_list(columns.keys(), 'r.') }}, r.sys_start, r.sys_known_from
),

reopened as (
    select * from reopened_changed
    union all
    select * from reopened_truncated
),

events as (
    select 0::bigint as _m_lsn, 0 as _m_ordinal, 'S'::char(1) as _m_op, reopened.sys_start as _m_ts,
           reopened.sys_known_from as _m_load_ts, seed._m_source_table,
           {{ medallion.medallion_column_list(columns.keys(), 'reopened.') }}
    from reopened
    left join medallion_seed_tables as seed using ({{ keys }})
    union all
    select _m_lsn, _m_ordinal, _m_op, _m_ts, _m_load_ts, _m_source_table, {{ cols }}
    from key_changes
),

significant as (
    -- an R row of an online snapshot (medallion/bronze/online_snapshot.py) that equals its key's
    -- state before it changes nothing: the stream had brought that version already
    select * from (
        select events.*,
               lag(_m_op) over by_key as _m_previous_op,
               lag(row({{ cols }})::text) over by_key as _m_previous_image,
               row({{ cols }})::text as _m_image
        from events
        window by_key as (partition by {{ keys }} order by _m_lsn, _m_ordinal)
    ) as compared
    where not (_m_op = 'R' and _m_previous_op is not null and _m_previous_op <> 'D'
               and _m_previous_image = _m_image)
),

timed as (
    -- a key's versions start strictly later than the one before, in commit order, even when
    -- the source's clock stepped back: max(commit_ts, previous start + 1 microsecond), computed
    -- as a running max of (commit_ts - n microseconds) + n microseconds over the key's events
    select
        numbered.*,
        max(numbered._m_ts - numbered._m_n * interval '1 microsecond') over (
            partition by {{ keys }} order by numbered._m_lsn, numbered._m_ordinal rows unbounded preceding)
            + numbered._m_n * interval '1 microsecond' as _m_effective_ts
    from (
        select significant.*, row_number() over (partition by {{ keys }} order by _m_lsn, _m_ordinal) as _m_n
        from significant
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

versions as (
    -- a version ends at whichever comes first: the key's next change or a truncate of the
    -- relation its row lives in (any truncate naming the source table's root); never before
    -- it starts, whatever the clocks say
    select
        {{ medallion.medallion_column_list(columns.keys(), 's.') }},
        s._m_effective_ts as sys_start,
        case
            when t._m_lsn is not null
                 and (s._m_next_lsn is null or (t._m_lsn, t._m_ordinal) < (s._m_next_lsn, s._m_next_ordinal))
                then case
                    -- inserted and truncated in one transaction: never visible (dropped below)
                    when t._m_lsn = s._m_lsn then s._m_effective_ts
                    else least(greatest(t._m_ts, s._m_effective_ts + interval '1 microsecond'),
                               coalesce(s._m_next_ts, 'infinity'))
                end
            else coalesce(s._m_next_ts, 'infinity')
        end as sys_end,
        s._m_load_ts as sys_known_from,
        case
            when t._m_lsn is not null
                 and (s._m_next_lsn is null or (t._m_lsn, t._m_ordinal) < (s._m_next_lsn, s._m_next_ordinal))
                then t._m_load_ts
            else coalesce(s._m_next_load_ts, 'infinity')
        end as sys_known_to
    from successors as s
    left join lateral (
        select truncates._m_lsn, truncates._m_ordinal, truncates._m_ts, truncates._m_load_ts
        from truncates
        where (truncates._m_lsn, truncates._m_ordinal) > (s._m_lsn, s._m_ordinal)
          and (truncates._m_source_table = {{ medallion.medallion_literal(source_root) }}
               or truncates._m_source_table = s._m_source_table)
        order by truncates._m_lsn, truncates._m_ordinal
        limit 1
    ) as t on true
    where s._m_op <> 'D'
),

final as (
    select * from versions where sys_start < sys_end
)

insert into medallion_versions ({{ cols }}, sys_start, sys_end, sys_known_from, sys_known_to)
select * from final;

insert into {{ relation }} ({{ cols }}, sys_start, sys_end, sys_known_from, sys_known_to)
select {{ cols }}, sys_start, sys_end, sys_known_from, sys_known_to from medallion_versions
order by {{ keys }}, sys_start;
{% endmacro %}
