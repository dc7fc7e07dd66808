{#-
    SQL that differs between engines, for models that run on both (Pagila's gold lines and
    marts). Each macro dispatches: default__ is PostgreSQL's text exactly as the models had it,
    spark__ the Spark SQL with the same meaning. Months and days are UTC: the Spark session's
    time zone is UTC (medallion/spark/session.py), PostgreSQL's is set per expression.
-#}

{% macro medallion_utc_month(ts) -%}
    {{ return(adapter.dispatch('medallion_utc_month', 'medallion')(ts)) }}
{%- endmacro %}
{% macro default__medallion_utc_month(ts) -%}
    date_trunc('month', {{ ts }} at time zone 'UTC')::date
{%- endmacro %}
{% macro spark__medallion_utc_month(ts) -%}
    cast(date_trunc('MONTH', {{ ts }}) as date)
{%- endmacro %}


{% macro medallion_utc_date(ts) -%}
    {{ return(adapter.dispatch('medallion_utc_date', 'medallion')(ts)) }}
{%- endmacro %}
{% macro default__medallion_utc_date(ts) -%}
    ({{ ts }} at time zone 'UTC')::date
{%- endmacro %}
{% macro spark__medallion_utc_date(ts) -%}
    to_date({{ ts }})
{%- endmacro %}


{% macro medallion_days_between(earlier, later) -%}
    {#- (later - earlier) in days, exact: a decimal, not a float -#}
    {{ return(adapter.dispatch('medallion_days_between', 'medallion')(earlier, later)) }}
{%- endmacro %}
{% macro default__medallion_days_between(earlier, later) -%}
    extract(epoch from {{ later }} - {{ earlier }}) / 86400
{%- endmacro %}
{% macro spark__medallion_days_between(earlier, later) -%}
    {#- 20 decimal places (Spark's division keeps the dividend's scale here): see medallion_round_avg -#}
    cast(unix_micros({{ later }}) - unix_micros({{ earlier }}) as decimal(38, 20)) / 86400000000
{%- endmacro %}


{% macro medallion_round_avg(value, places) -%}
    {#- round(avg(value), places) of exact numbers -#}
    {{ return(adapter.dispatch('medallion_round_avg', 'medallion')(value, places)) }}
{%- endmacro %}
{% macro default__medallion_round_avg(value, places) -%}
    round(avg({{ value }}), {{ places }})
{%- endmacro %}
{% macro spark__medallion_round_avg(value, places) -%}
    {#- Spark's decimals stop at a fixed scale (20 places for day counts), so an average exactly on
        a rounding boundary (6.625 from five day counts) can come out a hair below it. Rounding to 16
        places first restores it: the error of n values is below n * 10^-20, and an average of
        microsecond day counts that is not on a boundary is at least 5.8e-14 / n away from it, so
        this is exact for groups of fewer than 1,000 lines (documented in docs/scale-out.md). -#}
    round(round(avg({{ value }}), 16), {{ places }})
{%- endmacro %}


{% macro medallion_plus_days(ts, days) -%}
    {{ return(adapter.dispatch('medallion_plus_days', 'medallion')(ts, days)) }}
{%- endmacro %}
{% macro default__medallion_plus_days(ts, days) -%}
    {{ ts }} + make_interval(days => {{ days }}::integer)
{%- endmacro %}
{% macro spark__medallion_plus_days(ts, days) -%}
    {{ ts }} + make_dt_interval(cast({{ days }} as integer))
{%- endmacro %}


{% macro medallion_numeric(value) -%}
    {#- an exact number of any scale: PostgreSQL's unconstrained numeric; Spark keeps the decimal
        type its arithmetic gives (a cast to plain decimal would be decimal(10,0)) -#}
    {{ return(adapter.dispatch('medallion_numeric', 'medallion')(value)) }}
{%- endmacro %}
{% macro default__medallion_numeric(value) -%}
    ({{ value }})::numeric
{%- endmacro %}
{% macro spark__medallion_numeric(value) -%}
    ({{ value }})
{%- endmacro %}
