{#-
    The three marts as SQL over line sets (see lines.sql). `scope` restricts the lines to the
    groups an incremental build recomputes (gold_in_scope()); 'true' computes every group.
    The current marts (models/gold) and the as-of functions (gold.*_as_of) both call these.
-#}

{% macro gold_monthly_revenue_sql(payment_lines, scope='true') %}
with payments as (
    select * from {{ payment_lines }} as payment_lines where {{ scope }}
),

final as (
    select
        store_id,
        month,
        {{ medallion_numeric('sum(amount)') }} as revenue,
        cast(count(*) as bigint) as payments
    from payments
    group by store_id, month
)

select * from final
{% endmacro %}


{% macro gold_top_titles_sql(payment_lines, rental_lines, scope='true') %}
with rentals as (
    select * from {{ rental_lines }} as rental_lines where {{ scope }}
),

payments as (
    select * from {{ payment_lines }} as payment_lines where {{ scope }}
),

rental_stats as (
    select
        film_id,
        month,
        max(title) as title,
        count(*) as rentals,
        -- the mean of days_out, exactly (rentals still out have no return_date and do not count)
        {{ medallion_mean_days('rental_date', 'return_date') }} as avg_days_out
    from rentals
    group by film_id, month
),

payment_stats as (
    select film_id, month, max(title) as title, sum(amount) as revenue
    from payments
    group by film_id, month
),

final as (
    select
        film_id,
        coalesce(rental_stats.title, payment_stats.title) as title,
        month,
        cast(coalesce(rental_stats.rentals, 0) as bigint) as rentals,
        {{ medallion_numeric('coalesce(payment_stats.revenue, 0)') }} as revenue,
        {{ medallion_numeric('rental_stats.avg_days_out') }} as avg_days_out
    from rental_stats
    full join payment_stats using (film_id, month)
)

select * from final
{% endmacro %}


{% macro gold_store_scorecard_sql(payment_lines, rental_lines, scope='true') %}
with rentals as (
    select * from {{ rental_lines }} as rental_lines where {{ scope }}
),

payments as (
    select * from {{ payment_lines }} as payment_lines where {{ scope }}
),

rental_stats as (
    select
        store_id,
        day,
        count(*) as rentals,
        -- late among the rentals of the day that are back; null when none is back yet
        round(100.0 * count(*) filter (where returned_late)
              / nullif(count(*) filter (where returned_late is not null), 0), 2) as late_return_pct
    from rentals
    group by store_id, day
),

payment_stats as (
    select store_id, day, sum(amount) as revenue
    from payments
    group by store_id, day
),

customers as (
    select store_id, day, count(distinct customer_id) as active_customers
    from (
        select store_id, day, customer_id from rentals
        union all
        select store_id, day, customer_id from payments
    ) as activity
    group by store_id, day
),

final as (
    select
        store_id,
        day,
        {{ medallion_numeric('coalesce(payment_stats.revenue, 0)') }} as revenue,
        cast(coalesce(rental_stats.rentals, 0) as bigint) as rentals,
        {{ medallion_numeric('rental_stats.late_return_pct') }} as late_return_pct,
        cast(customers.active_customers as bigint) as active_customers
    from customers
    left join rental_stats using (store_id, day)
    left join payment_stats using (store_id, day)
)

select * from final
{% endmacro %}
