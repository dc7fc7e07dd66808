-- depends_on: {{ ref('fact_payment_hist') }} {{ ref('fact_rental_hist') }} {{ ref('dim_inventory_hist') }} {{ ref('dim_film_hist') }}
{{ config(
    materialized='gold_mart',
    grain=['film_id', 'month'],
    inputs=[
        {'lines': 'int_rental_lines', 'key': 'rental_id', 'fields': ['title', 'rental_date', 'return_date'],
         'changed_by': {'fact_rental': 'rental_id', 'dim_inventory': 'inventory_id', 'dim_film': 'film_id'}},
        {'lines': 'int_payment_lines', 'key': 'payment_id', 'fields': ['title', 'amount'],
         'changed_by': {'fact_payment': 'payment_id', 'fact_rental': 'rental_id', 'dim_inventory': 'inventory_id', 'dim_film': 'film_id'}},
    ],
    post_hook=["{{ gold_create_as_of_function('top_titles_as_of',
                   'film_id integer, title text, month date, rentals bigint, revenue numeric, avg_days_out numeric',
                   gold_top_titles_sql(gold_payment_lines_as_of(), gold_rental_lines_as_of()),
                   gold_top_titles_sql(gold_payment_lines_as_of(known=true), gold_rental_lines_as_of(known=true))) }}"],
) }}

{{ gold_top_titles_sql(gold_input('int_payment_lines'), gold_input('int_rental_lines'), gold_in_scope()) }}
