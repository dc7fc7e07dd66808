-- depends_on: {{ ref('fact_payment_hist') }} {{ ref('fact_rental_hist') }} {{ ref('dim_inventory_hist') }} {{ ref('dim_film_hist') }}
{{ config(
    materialized='gold_mart',
    grain=['store_id', 'day'],
    inputs=[
        {'lines': 'int_rental_lines', 'key': 'rental_id', 'fields': ['returned_late', 'customer_id'],
         'changed_by': {'fact_rental': 'rental_id', 'dim_inventory': 'inventory_id', 'dim_film': 'film_id'}},
        {'lines': 'int_payment_lines', 'key': 'payment_id', 'fields': ['amount', 'customer_id'],
         'changed_by': {'fact_payment': 'payment_id', 'fact_rental': 'rental_id', 'dim_inventory': 'inventory_id', 'dim_film': 'film_id'}},
    ],
    post_hook=["{{ gold_create_as_of_function('store_scorecard_as_of',
                   'store_id integer, day date, revenue numeric, rentals bigint, late_return_pct numeric, active_customers bigint',
                   gold_store_scorecard_sql(gold_payment_lines_as_of(), gold_rental_lines_as_of()),
                   gold_store_scorecard_sql(gold_payment_lines_as_of(known=true), gold_rental_lines_as_of(known=true))) }}"],
) }}

{{ gold_store_scorecard_sql(gold_input('int_payment_lines'), gold_input('int_rental_lines'), gold_in_scope()) }}
