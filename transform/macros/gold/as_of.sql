{#-
    Gold time travel: gold.<mart>_as_of(ts timestamptz) returns the mart as a build would have
    computed it at ts, from exactly the source rows that existed at ts (sys_start <= ts <
    sys_end in every silver history it reads: payments, rentals, inventory, films). Same line
    and mart SQL as the current marts; with ts at or after the last applied change it equals
    the current mart. Each mart model creates its function in a post-hook.
-#}

{% macro gold_as_of_source(history) %}
    {#- silver.<history without _hist>_as_of(ts), the function the system_versioned
        materialization created for that history table -#}
    {%- set relation = ref(history) -%}
    {{- return(adapter.quote(relation.schema) ~ '.' ~ adapter.quote(relation.identifier | replace('_hist', '') ~ '_as_of') ~ '(ts)') -}}
{% endmacro %}


{% macro gold_payment_lines_as_of() %}
({{ gold_payment_lines(gold_as_of_source('fact_payment_hist'), gold_as_of_source('fact_rental_hist'),
                       gold_as_of_source('dim_inventory_hist'), gold_as_of_source('dim_film_hist')) }})
{% endmacro %}


{% macro gold_rental_lines_as_of() %}
({{ gold_rental_lines(gold_as_of_source('fact_rental_hist'), gold_as_of_source('dim_inventory_hist'),
                      gold_as_of_source('dim_film_hist')) }})
{% endmacro %}


{% macro gold_create_as_of_function(name, returns, body) %}
{#- drop first: create or replace cannot change a function's result columns -#}
{%- set function = adapter.quote(this.schema) ~ '.' ~ adapter.quote(name) -%}
drop function if exists {{ function }}(timestamptz);
create function {{ function }}(ts timestamptz)
returns table ({{ returns }})
language sql stable
as $gold_as_of$
{{ body }}
$gold_as_of$;
comment on function {{ function }}(timestamptz) is
    {{ dbt.string_literal(this.identifier ~ ' as computed from the source rows that existed at ts (sys_start <= ts < sys_end); see docs/gold.md') }};
{% endmacro %}
