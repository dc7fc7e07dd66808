{{ gold_payment_lines(ref('fact_payment'), ref('fact_rental'), ref('dim_inventory'), ref('dim_film')) }}
