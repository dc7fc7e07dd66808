-- Per store and UTC day: revenue, rentals, late returns among the day's rentals that are back,
-- distinct customers who rented or paid. docs/gold.md.
{{ config(materialized='gold_mart', as_of='store_scorecard_as_of') }}

with rental_stats as (
    select
        inventory.store_id,
        {{ medallion.medallion_utc_date('rentals.rental_date') }} as day,
        count(*) as rentals,
        -- late among the rentals of the day that are back; null when none is back yet
        round(100.0 * count(*) filter (where rentals.return_date
                                       > {{ medallion.medallion_plus_days('rentals.rental_date', 'films.rental_duration') }})
              / nullif(count(*) filter (where (rentals.return_date
                                        > {{ medallion.medallion_plus_days('rentals.rental_date', 'films.rental_duration') }})
                                        is not null), 0), 2) as late_return_pct
    from {{ ref('fact_rental') }} as rentals
    join {{ ref('dim_inventory') }} as inventory on inventory.inventory_id = rentals.inventory_id
    left join {{ ref('dim_film') }} as films on films.film_id = inventory.film_id
    group by 1, 2
),

payment_stats as (
    select
        inventory.store_id,
        {{ medallion.medallion_utc_date('payments.payment_date') }} as day,
        sum(payments.amount) as revenue
    from {{ ref('fact_payment') }} as payments
    join {{ ref('fact_rental') }} as rentals on rentals.rental_id = payments.rental_id
    join {{ ref('dim_inventory') }} as inventory on inventory.inventory_id = rentals.inventory_id
    group by 1, 2
),

customers as (
    select store_id, day, count(distinct customer_id) as active_customers
    from (
        select
            inventory.store_id,
            {{ medallion.medallion_utc_date('rentals.rental_date') }} as day,
            rentals.customer_id
        from {{ ref('fact_rental') }} as rentals
        join {{ ref('dim_inventory') }} as inventory on inventory.inventory_id = rentals.inventory_id
        union all
        select
            inventory.store_id,
            {{ medallion.medallion_utc_date('payments.payment_date') }} as day,
            payments.customer_id
        from {{ ref('fact_payment') }} as payments
        join {{ ref('fact_rental') }} as rentals on rentals.rental_id = payments.rental_id
        join {{ ref('dim_inventory') }} as inventory on inventory.inventory_id = rentals.inventory_id
    ) as activity
    group by 1, 2
)

select
    store_id,
    day,
    {{ medallion.medallion_numeric('coalesce(payment_stats.revenue, 0)') }} as revenue,
    cast(coalesce(rental_stats.rentals, 0) as bigint) as rentals,
    {{ medallion.medallion_numeric('rental_stats.late_return_pct') }} as late_return_pct,
    cast(customers.active_customers as bigint) as active_customers
from customers
left join rental_stats using (store_id, day)
left join payment_stats using (store_id, day)
