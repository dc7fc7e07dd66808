-- depends_on: {{ ref('fact_payment_hist') }} {{ ref('fact_rental_hist') }} {{ ref('dim_inventory_hist') }} {{ ref('dim_film_hist') }}
{{ config(
    materialized='gold_mart',
    grain=['store_id', 'month'],
    inputs=[{'lines': 'int_payment_lines', 'key': 'payment_id', 'fields': ['amount'],
         'changed_by': {'fact_payment': 'payment_id', 'fact_rental': 'rental_id', 'dim_inventory': 'inventory_id', 'dim_film': 'film_id'}}],
    post_hook=["{{ gold_create_as_of_function('monthly_revenue_as_of',
                   'store_id integer, month date, revenue numeric, payments bigint',
                   gold_monthly_revenue_sql(gold_payment_lines_as_of()),
                   gold_monthly_revenue_sql(gold_payment_lines_as_of(known=true))) }}"],
) }}

{{ gold_monthly_revenue_sql(gold_input('int_payment_lines'), gold_in_scope()) }}
