{#-
    Gold time travel: gold.<mart>_as_of(ts timestamptz) returns the mart as a build would have
    computed it at ts, from exactly the source rows that existed at ts (sys_start <= ts <
    sys_end in every silver history it reads). medallion/gold/plan.py writes its body: the
    mart's SQL with each silver relation swapped for its history's as-of function; the mart's
    build creates it (gold_plain_as_of, plain_mart.sql).
-#}

{% macro gold_create_as_of_function(name, returns, body, body_known=none) %}
    {#- per engine: Spark SQL has no table functions (gold/spark/as_of.sql) -#}
    {{- return(adapter.dispatch('gold_create_as_of_function', 'medallion')(name, returns, body, body_known)) -}}
{% endmacro %}


{% macro default__gold_create_as_of_function(name, returns, body, body_known=none) %}
{#- <mart>_as_of(ts): the mart from the source rows that existed at ts; with body_known also
    <mart>_as_of(ts, known => k): the mart from what the warehouse had loaded by k, which for
    ts = now() is the mart as the build that ran at k left it. Dropped first: create or
    replace cannot change a function's result columns. -#}
{%- set function = medallion.medallion_quote(this.schema) ~ '.' ~ medallion.medallion_quote(name) -%}
drop function if exists {{ function }}(timestamptz);
create function {{ function }}(ts timestamptz)
returns table ({{ returns }})
language sql stable
as $gold_as_of$
{{ body }}
$gold_as_of$;
comment on function {{ function }}(timestamptz) is
    {{ medallion.medallion_literal(this.identifier ~ ' as computed from the source rows that existed at ts (sys_start <= ts < sys_end); see docs/gold.md') }};
{%- if body_known is not none %}
drop function if exists {{ function }}(timestamptz, timestamptz);
create function {{ function }}(ts timestamptz, known timestamptz)
returns table ({{ returns }})
language sql stable
as $gold_as_of_known$
{{ body_known }}
$gold_as_of_known$;
comment on function {{ function }}(timestamptz, timestamptz) is
    {{ medallion.medallion_literal(this.identifier ~ ' as of ts, as the warehouse knew it at known (see docs/time-travel.md)') }};
{%- endif %}
{% endmacro %}
