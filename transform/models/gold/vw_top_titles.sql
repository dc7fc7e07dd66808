-- Per film and UTC month: rentals (by rental month), revenue (payments by payment month),
-- average days out of the month's returned rentals, the film's title. docs/gold.md.
{{ config(materialized='gold_mart', as_of='top_titles_as_of') }}

with rental_stats as (
    select
        inventory.film_id,
        {{ medallion.medallion_utc_month('rentals.rental_date') }} as month,
        max(films.title) as title,
        count(*) as rentals,
        -- the mean of days_out, exactly (rentals still out have no return_date and do not count)
        {{ medallion.medallion_mean_days('rentals.rental_date', 'rentals.return_date') }} as avg_days_out
    from {{ ref('fact_rental') }} as rentals
    join {{ ref('dim_inventory') }} as inventory on inventory.inventory_id = rentals.inventory_id
    left join {{ ref('dim_film') }} as films on films.film_id = inventory.film_id
    group by 1, 2
),

payment_stats as (
    select
        inventory.film_id,
        {{ medallion.medallion_utc_month('payments.payment_date') }} as month,
        max(films.title) as title,
        sum(payments.amount) as revenue
    from {{ ref('fact_payment') }} as payments
    join {{ ref('fact_rental') }} as rentals on rentals.rental_id = payments.rental_id
    join {{ ref('dim_inventory') }} as inventory on inventory.inventory_id = rentals.inventory_id
    left join {{ ref('dim_film') }} as films on films.film_id = inventory.film_id
    group by 1, 2
)

select
    film_id,
    coalesce(rental_stats.title, payment_stats.title) as title,
    month,
    cast(coalesce(rental_stats.rentals, 0) as bigint) as rentals,
    {{ medallion.medallion_numeric('coalesce(payment_stats.revenue, 0)') }} as revenue,
    {{ medallion.medallion_numeric('rental_stats.avg_days_out') }} as avg_days_out
from rental_stats
full join payment_stats using (film_id, month)
