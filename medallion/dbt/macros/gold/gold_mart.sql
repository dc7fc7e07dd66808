{#-
    The gold_mart materialization: a mart is one plain SQL file over silver's current relations
    (plain_mart.sql builds it: the plan medallion/gold/plan.py derives from its SQL), and this
    file holds the bookkeeping every mart shares: <mart>__seen, the silver positions its last
    build applied, and the stretch of bronze a build reads (gold_stretch).
-#}

{% macro gold_seen_relation(relation) %}
    {{- return(medallion.medallion_state_relation(relation, '__seen')) -}}
{% endmacro %}


{% macro gold_state_relation(relation) %}
    {#- <mart>__state: per group, the sums and counts a delta-maintained mart is derived from
        (plain_mart.sql, medallion/gold/delta.py) -#}
    {{- return(medallion.medallion_state_relation(relation, '__state')) -}}
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
    {#- the mart must be built in full: a model it has not seen yet, or a truncate, a re-sync or
        a schema change in a stretch (their effects reach rows that bronze's keys do not name) -#}
    select exists (select from gold_stretch where lo is null)
        or {{ deps | map(attribute='watermark') | unique | list | length }} > (select count(*) from gold_stretch)
    {%- for dep in deps %}
        or exists (select from {{ dep.bronze }} where {{ medallion.gold_stretch_sql(dep) }} and op in ('T', 'E'))
        or exists (select from bronze.table_schema
                   where bronze_table = {{ medallion.medallion_literal(dep.bronze.identifier) }} and {{ medallion.gold_stretch_sql(dep) }})
    {%- endfor %}
{% endmacro %}


{% macro gold_seen_sql(seen) %}
    {#- the silver positions this build applied, for the next one (as captured at its start) -#}
    create table if not exists {{ seen }} (model text primary key, last_commit_lsn bigint not null);
    delete from {{ seen }};
    insert into {{ seen }} (model, last_commit_lsn)
    select model, hi from gold_stretch;
{% endmacro %}


{% macro gold_basis_relation(relation) %}
    {#- <mart>__basis: an earlier version's per-line bookkeeping (marts declared with `inputs`).
        A mart that still has one is built in full once, which drops it (plain_mart.sql). -#}
    {{- return(medallion.medallion_state_relation(relation, '__basis')) -}}
{% endmacro %}



