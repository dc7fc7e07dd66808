{#- The typed columns of source tables that more than one silver model reads (the current-state
    fact and its history): one definition, so the two can never disagree. -#}
{% macro source_columns(table) %}
    {%- set columns = {
        'rental': {
            'rental_id': 'integer',
            'rental_date': 'timestamptz',
            'inventory_id': 'integer',
            'customer_id': 'integer',
            'return_date': 'timestamptz',
            'staff_id': 'integer',
            'last_update': 'timestamptz',
        },
        'payment': {
            'payment_id': 'integer',
            'customer_id': 'integer',
            'staff_id': 'integer',
            'rental_id': 'integer',
            'amount': 'numeric(5,2)',
            'payment_date': 'timestamptz',
        },
    } -%}
    {{- return(columns[table]) -}}
{% endmacro %}
