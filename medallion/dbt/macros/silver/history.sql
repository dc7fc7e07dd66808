{% macro medallion_quote(name) -%}
    {#- a quoted identifier; embedded double quotes doubled (adapter.quote does not) -#}
    "{{ name | replace('"', '""') }}"
{%- endmacro %}


{% macro medallion_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}


{% macro medallion_column_list(names, prefix='') -%}
    {%- for name in names -%}{{ prefix }}{{ medallion_quote(name) }}{{ ", " if not loop.last }}{%- endfor -%}
{%- endmacro %}


{% macro medallion_columns(bronze_relation) %}
    {#- {column: warehouse type} of every column the table ever had, in the history's order, from
        bronze's record of the source's schema over time (see schema_evolution.sql) -#}
    {{- return(medallion_ordered_columns(medallion_history_columns(medallion_timeline(bronze_relation), this))) -}}
{% endmacro %}


{% macro system_versioned_create_sql(relation, key, columns) %}
{%- set prefix = config.get('object_prefix') or relation.identifier -%}
{%- set keys = medallion_column_list(key) -%}
create table {{ relation }} (
    {%- for column, type in columns.items() %}
    {{ medallion_quote(column) }} {{ type }}{{ " not null" if column in key }},
    {%- endfor %}
    sys_start      timestamptz not null,                      -- source time: valid from (commit time)
    sys_end        timestamptz not null default 'infinity',   -- ... until (exclusive)
    sys_known_from timestamptz not null,                      -- warehouse time: loaded into bronze
    sys_known_to   timestamptz not null default 'infinity',   -- ... until its end was loaded
    constraint {{ medallion_quote(prefix ~ '_pkey') }} primary key ({{ keys }}, sys_start),
    constraint {{ medallion_quote(prefix ~ '_period') }} check (sys_start < sys_end)
);
-- at most one current version per key
create unique index {{ medallion_quote(prefix ~ '_one_current') }}
    on {{ relation }} ({{ keys }}) where sys_end = 'infinity';
create index {{ medallion_quote(prefix ~ '_period_idx') }}
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
        where a.attrelid = {{ medallion_literal(relation.include(database=False)) }}::regclass
          and a.attname = any(array[{% for k in key %}{{ medallion_literal(k) }}{{ ", " if not loop.last }}{% endfor %}]::name[])
          and not exists (
              select from pg_opclass as o
              join pg_am as m on m.oid = o.opcmethod
              where m.amname = 'gist' and o.opcdefault
                and (o.opcintype = a.atttypid
                     or exists (select from pg_cast as c where c.castsource = a.atttypid
                                and c.casttarget = o.opcintype and c.castmethod = 'b')))
    ) then
        alter table {{ relation }} add constraint {{ medallion_quote(prefix ~ '_no_overlap') }}
            exclude using gist (
                {%- for column in key %}{{ medallion_quote(column) }} with =, {% endfor -%}
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
create or replace function {{ medallion_quote(relation.schema) }}.{{ medallion_quote(function) }}(ts timestamptz)
returns setof {{ bare }}
language sql stable
as $as_of$
    -- plain comparisons, not tstzrange(...) @> ts: with a key filter the btree
    -- (key, sys_start, sys_end) answers a point lookup in well under a millisecond, where
    -- the GiST exclusion index took ~20 ms on a million versions (make bench)
    select * from {{ bare }} where sys_start <= ts and sys_end > ts
$as_of$;
comment on function {{ medallion_quote(relation.schema) }}.{{ medallion_quote(function) }}(timestamptz) is
    {{ medallion_literal('The rows of ' ~ relation.identifier ~ ' valid at ts (sys_start <= ts < sys_end).') }};

-- as of ts, as known at `known` (call it with known => k): the versions the warehouse had
-- loaded by then, each ending where it was known to end then (a later-loaded end is ignored)
create or replace function {{ medallion_quote(relation.schema) }}.{{ medallion_quote(function) }}(ts timestamptz, known timestamptz)
returns setof {{ bare }}
language sql stable
as $as_of_known$
    select * from {{ bare }}
    where sys_start <= ts and sys_known_from <= known and (sys_end > ts or sys_known_to > known)
$as_of_known$;
comment on function {{ medallion_quote(relation.schema) }}.{{ medallion_quote(function) }}(timestamptz, timestamptz) is
    {{ medallion_literal('The rows of ' ~ relation.identifier ~ ' valid at ts as the warehouse knew them at known.') }};
{% endmacro %}


{% macro medallion_range(after, before) -%}
    {#- bronze rows strictly between two stream positions (commit_lsn, ordinal): an index range scan -#}
    (commit_lsn, ordinal) > ({{ after[0] }}, {{ after[1] }}) and (commit_lsn, ordinal) < ({{ before[0] }}, {{ before[1] }})
{%- endmacro %}


{% macro system_versioned_stage_sql(relation, feed_sql, key, after, before) %}
{#- The bronze rows this step applies: those strictly between two stream positions. -#}
drop table if exists medallion_feed, medallion_seed_tables;
create temporary table medallion_feed on commit drop as
select * from ({{ feed_sql }}) as feed
where {{ medallion_range(after, before) }};
analyze medallion_feed;

-- the source relation of each reopened version; needed only when a truncate names one
-- partition of a partitioned source (filled by system_versioned_seed_tables_sql)
create temporary table medallion_seed_tables on commit drop as
select {{ medallion_column_list(key) }}, source_table from medallion_feed with no data;
{% endmacro %}


{% macro system_versioned_seed_tables_sql(feed_sql, key, after) %}
{#- Where each key's row lived before this batch: its latest change up to lo. One pass over
    bronze, paid only in a batch that truncates a single partition (rare). -#}
{%- set keys = medallion_column_list(key) -%}
insert into medallion_seed_tables
select distinct on ({{ keys }}) {{ keys }}, source_table
from ({{ feed_sql }}) as feed
where (commit_lsn, ordinal) <= ({{ after[0] }}, {{ after[1] }}) and op not in ('T', 'E')
order by {{ keys }}, commit_lsn desc, ordinal desc;
analyze medallion_seed_tables;
{% endmacro %}


{% macro system_versioned_apply_sql(relation, key, columns, source_root) %}
{#- Applies the staged bronze rows: closes the current versions they end and appends the
    versions they open. A full refresh is the same with lo = -1 on an empty table, so
    incremental and full builds run the very same statements. -#}
{%- set keys = medallion_column_list(key) -%}
{%- set cols = medallion_column_list(columns.keys()) -%}
-- a batch's statements touch few rows but their estimates can cross jit_above_cost, and
-- compiling them took up to a second (measured at Pagila x10) for a few milliseconds of work
set local jit = off;
drop table if exists medallion_versions;
create temporary table medallion_versions on commit drop as
select {{ cols }}, sys_start, sys_end, sys_known_from, sys_known_to from {{ relation }} with no data;

with truncates as materialized (
    -- few or none: looked up once per version
    select commit_lsn, ordinal, commit_ts, load_ts, source_table from medallion_feed where op = 'T'
),

key_changes as (
    -- one change per key and transaction: its last (nobody could see the states in between)
    select distinct on ({{ keys }}, commit_lsn) commit_lsn, ordinal, op, commit_ts, load_ts, source_table, {{ cols }}
    from medallion_feed
    where op <> 'T'
    order by {{ keys }}, commit_lsn, ordinal desc
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
                      where {% for k in key %}k.{{ medallion_quote(k) }} = r.{{ medallion_quote(k) }}{{ " and " if not loop.last }}{% endfor %})
    returning {{ medallion_column_list(columns.keys(), 'r.') }}, r.sys_start, r.sys_known_from
),

reopened as (
    select * from reopened_changed
    union all
    select * from reopened_truncated
),

events as (
    select 0::bigint as commit_lsn, 0 as ordinal, 'S'::char(1) as op, reopened.sys_start as commit_ts,
           reopened.sys_known_from as load_ts, seed.source_table,
           {{ medallion_column_list(columns.keys(), 'reopened.') }}
    from reopened
    left join medallion_seed_tables as seed using ({{ keys }})
    union all
    select commit_lsn, ordinal, op, commit_ts, load_ts, source_table, {{ cols }}
    from key_changes
),

significant as (
    -- an R row of an online snapshot (medallion/bronze/online_snapshot.py) that equals its key's
    -- state before it changes nothing: the stream had brought that version already
    select * from (
        select events.*,
               lag(op) over by_key as medallion_previous_op,
               lag(row({{ cols }})::text) over by_key as medallion_previous_image,
               row({{ cols }})::text as medallion_image
        from events
        window by_key as (partition by {{ keys }} order by commit_lsn, ordinal)
    ) as compared
    where not (op = 'R' and medallion_previous_op is not null and medallion_previous_op <> 'D'
               and medallion_previous_image = medallion_image)
),

timed as (
    -- a key's versions start strictly later than the one before, in commit order, even when
    -- the source's clock stepped back: max(commit_ts, previous start + 1 microsecond), computed
    -- as a running max of (commit_ts - n microseconds) + n microseconds over the key's events
    select
        numbered.*,
        max(numbered.commit_ts - numbered.n * interval '1 microsecond') over (
            partition by {{ keys }} order by numbered.commit_lsn, numbered.ordinal rows unbounded preceding)
            + numbered.n * interval '1 microsecond' as effective_ts
    from (
        select significant.*, row_number() over (partition by {{ keys }} order by commit_lsn, ordinal) as n
        from significant
    ) as numbered
),

successors as (
    select
        timed.*,
        lead(commit_lsn) over by_key as next_lsn,
        lead(ordinal) over by_key as next_ordinal,
        lead(effective_ts) over by_key as next_ts,
        lead(load_ts) over by_key as next_load_ts
    from timed
    window by_key as (partition by {{ keys }} order by commit_lsn, ordinal)
),

versions as (
    -- a version ends at whichever comes first: the key's next change or a truncate of the
    -- relation its row lives in (any truncate naming the source table's root); never before
    -- it starts, whatever the clocks say
    select
        {{ medallion_column_list(columns.keys(), 's.') }},
        s.effective_ts as sys_start,
        case
            when t.commit_lsn is not null
                 and (s.next_lsn is null or (t.commit_lsn, t.ordinal) < (s.next_lsn, s.next_ordinal))
                then case
                    -- inserted and truncated in one transaction: never visible (dropped below)
                    when t.commit_lsn = s.commit_lsn then s.effective_ts
                    else least(greatest(t.commit_ts, s.effective_ts + interval '1 microsecond'),
                               coalesce(s.next_ts, 'infinity'))
                end
            else coalesce(s.next_ts, 'infinity')
        end as sys_end,
        s.load_ts as sys_known_from,
        case
            when t.commit_lsn is not null
                 and (s.next_lsn is null or (t.commit_lsn, t.ordinal) < (s.next_lsn, s.next_ordinal))
                then t.load_ts
            else coalesce(s.next_load_ts, 'infinity')
        end as sys_known_to
    from successors as s
    left join lateral (
        select truncates.commit_lsn, truncates.ordinal, truncates.commit_ts, truncates.load_ts
        from truncates
        where (truncates.commit_lsn, truncates.ordinal) > (s.commit_lsn, s.ordinal)
          and (truncates.source_table = {{ medallion_literal(source_root) }}
               or truncates.source_table = s.source_table)
        order by truncates.commit_lsn, truncates.ordinal
        limit 1
    ) as t on true
    where s.op <> 'D'
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
