{{ gold_rental_lines(ref('fact_rental'), ref('dim_inventory'), ref('dim_film')) }}
