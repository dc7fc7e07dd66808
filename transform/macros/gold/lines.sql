{#-
    Gold's two line sets: one row per payment and one row per rental, each placed at its store
    and film. Shared by the current marts (over silver's current views and facts) and by the
    as-of functions (over silver's <name>_as_of(ts) functions), so that both compute the very
    same thing.

    store of a payment or rental = the store of the rented inventory item: payment -> rental
    -> inventory -> store, inner joins as Pagila's own sales_by_store view; a payment whose
    rental or inventory item does not exist (any more) belongs to no store and is in no mart.
    Months and days are UTC: the date of the timestamp at time zone 'UTC', whatever the
    session's TimeZone. Engine-specific SQL goes through the engine's portable macros
    (medallion/dbt/macros/portable.sql), so the same lines run on PostgreSQL and Spark.

    One SELECT each, without CTEs: PostgreSQL never flattens a view that has a WITH clause into
    the query that reads it, so a build asking for a few lines by key (gold_touched) would join
    every fact row first (1.7 s at factor 10, measured) instead of looking the keys up (ms).
-#}

{% macro gold_payment_lines(payments, rentals, inventory, films) %}
select
    payments.payment_id,
    payments.rental_id,
    rentals.inventory_id,
    payments.customer_id,
    payments.amount,
    payments.payment_date,
    inventory.store_id,
    inventory.film_id,
    films.title,
    {{ medallion_utc_month('payments.payment_date') }} as month,
    {{ medallion_utc_date('payments.payment_date') }} as day
from {{ payments }} as payments
join {{ rentals }} as rentals on rentals.rental_id = payments.rental_id
join {{ inventory }} as inventory on inventory.inventory_id = rentals.inventory_id
left join {{ films }} as films on films.film_id = inventory.film_id
{% endmacro %}


{% macro gold_rental_lines(rentals, inventory, films) %}
{#- days_out and returned_late are null while the rental is out: both are facts about a
    return, so they are known exactly once the return is in the source (no now()). -#}
select
    rentals.rental_id,
    rentals.inventory_id,
    rentals.customer_id,
    rentals.rental_date,
    rentals.return_date,
    inventory.store_id,
    inventory.film_id,
    films.title,
    films.rental_duration,
    {{ medallion_utc_month('rentals.rental_date') }} as month,
    {{ medallion_utc_date('rentals.rental_date') }} as day,
    {{ medallion_days_between('rentals.rental_date', 'rentals.return_date') }} as days_out,
    rentals.return_date > {{ medallion_plus_days('rentals.rental_date', 'films.rental_duration') }}
        as returned_late
from {{ rentals }} as rentals
join {{ inventory }} as inventory on inventory.inventory_id = rentals.inventory_id
left join {{ films }} as films on films.film_id = inventory.film_id
{% endmacro %}
