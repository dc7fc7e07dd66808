{#- Pagila's line sets as of ts, for gold.<mart>_as_of(ts): the same line SQL over the silver
    histories' as-of functions (gold_as_of_source) instead of the current tables. -#}

{% macro gold_payment_lines_as_of(known=false) %}
({{ gold_payment_lines(gold_as_of_source('fact_payment_hist', known), gold_as_of_source('fact_rental_hist', known),
                       gold_as_of_source('dim_inventory_hist', known), gold_as_of_source('dim_film_hist', known)) }})
{% endmacro %}


{% macro gold_rental_lines_as_of(known=false) %}
({{ gold_rental_lines(gold_as_of_source('fact_rental_hist', known), gold_as_of_source('dim_inventory_hist', known),
                      gold_as_of_source('dim_film_hist', known)) }})
{% endmacro %}
