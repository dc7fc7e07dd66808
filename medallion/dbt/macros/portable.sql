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
    cast(unix_micros({{ later }}) - unix_micros({{ earlier }}) as decimal(38, 20)) / 86400000000
{%- endmacro %}


{% macro medallion_mean_days(earlier, later) -%}
    {#- The mean of (later - earlier) in days over the rows where later is set, rounded half up to
        2 places, computed exactly: in integers of microseconds, round(S / (D n), 2) =
        div(200 S + D n, 2 D n) / 100 with D = 86400 * 10^6. An average of rounded day counts is
        not exact, and the two engines round those differently (4.395 came out 4.39 on one). -#}
    {{ return(adapter.dispatch('medallion_mean_days', 'medallion')(earlier, later)) }}
{%- endmacro %}
{% macro default__medallion_mean_days(earlier, later) -%}
    round(div(200 * sum(extract(epoch from {{ later }} - {{ earlier }}) * 1000000) + 86400000000 * count({{ later }}),
              nullif(2 * 86400000000 * count({{ later }}), 0)) / 100.0, 2)
{%- endmacro %}
{% macro spark__medallion_mean_days(earlier, later) -%}
    round(cast((200 * sum(unix_micros({{ later }}) - unix_micros({{ earlier }})) + 86400000000 * count({{ later }}))
               div nullif(2 * 86400000000 * count({{ later }}), 0) as decimal(20, 0)) / 100, 2)
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
