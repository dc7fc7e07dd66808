-- Revenue per store and UTC month: the store of a payment is the store of the rented item
-- (payment -> rental -> inventory, inner joins, as Pagila's sales_by_store). docs/gold.md.
{{ config(materialized='gold_mart', as_of='monthly_revenue_as_of') }}

select
    inventory.store_id,
    {{ medallion.medallion_utc_month('payments.payment_date') }} as month,
    {{ medallion.medallion_numeric('sum(payments.amount)') }} as revenue,
    cast(count(*) as bigint) as payments
from {{ ref('fact_payment') }} as payments
join {{ ref('fact_rental') }} as rentals on rentals.rental_id = payments.rental_id
join {{ ref('dim_inventory') }} as inventory on inventory.inventory_id = rentals.inventory_id
group by 1, 2
