{% macro cdc_feed(bronze, key, columns, renames=none) %}
{#-
    The typed change feed of one bronze CDC table: one row per change in commit order
    (_m_lsn, _m_ordinal: bronze's commit_lsn and ordinal), the source row's columns cast from
    bronze's jsonb, beside _m_op, _m_ts (commit_ts), _m_load_ts and _m_source_table.

    - R/I/U rows carry the row the change left behind, D rows the row it removed, T rows
      (truncate) no row at all.
    - An update that changes the key also yields a D for the old key: for history, the old
      key's row ended there.
    - wal2json writes numbers and booleans as JSON values and every other type as its text
      form, so `image ->> column` cast to the column's type restores the source value.

    bronze: the bronze relation (a source()); key: list of key columns;
    columns: ordered mapping of column name -> PostgreSQL type (keys included), by silver name;
    renames: source column -> silver name (medallion.toml's column_names; the model's unless given).
-#}
{%- set renames = renames if renames is not none else (config.get('column_names') or {}) -%}
{%- set source_of = {} -%}
{%- for source, silver in renames.items() %}{% do source_of.update({silver: source}) %}{% endfor -%}
{%- set key_image = [] -%}
{%- set key_old = [] -%}
{%- for k in key -%}
    {%- do key_image.append("full_row -> " ~ medallion.medallion_literal(source_of.get(k, k))) -%}
    {%- do key_old.append("old_row -> " ~ medallion.medallion_literal(source_of.get(k, k))) -%}
{%- endfor %}
with changes as not materialized (
    -- inlined into both uses, so a filter on commit_lsn reaches the bronze primary key
    select commit_lsn, ordinal, op, commit_ts, load_ts, source_table, full_row, old_row
    from {{ bronze }}
),

key_moves as (
    -- an update of the key column(s) removes the row under its old key
    select commit_lsn, ordinal, 'D'::char(1) as op, commit_ts, load_ts, source_table, old_row as image
    from changes
    where op = 'U'
      and jsonb_build_array({{ key_old | join(', ') }})
          is distinct from jsonb_build_array({{ key_image | join(', ') }})
),

images as (
    select commit_lsn, ordinal, op, commit_ts, load_ts, source_table, full_row as image
    from changes
    union all
    select commit_lsn, ordinal, op, commit_ts, load_ts, source_table, image
    from key_moves
),

final as (
    -- the change's own columns under names no source column takes (_m_*: see medallion_meta), so
    -- a source column may be called op, commit_ts, n or anything else the engine uses
    select
        commit_lsn as _m_lsn,
        ordinal as _m_ordinal,
        op as _m_op,
        commit_ts as _m_ts,
        load_ts as _m_load_ts,  -- when the warehouse learned of the change (bronze's load time)
        source_table as _m_source_table,
        {%- for name, type in columns.items() %}
        {{ medallion.medallion_typed("image ->> " ~ medallion.medallion_literal(source_of.get(name, name)), type) }} as {{ medallion.medallion_quote(name) }}{{ "," if not loop.last }}
        {%- endfor %}
    from images
)

select * from final
{% endmacro %}


{% macro medallion_typed(text, type) -%}
{#- A bronze value (the type's text output) as the column's type. wal2json alone writes bytea
    as bare hex, without the \x that bytea's text output starts with. -#}
{%- if type == 'bytea' -%}
    (case when left({{ text }}, 2) = '\x' then ({{ text }})::bytea else decode({{ text }}, 'hex') end)
{%- else -%}
    ({{ text }})::{{ type }}
{%- endif -%}
{%- endmacro %}
