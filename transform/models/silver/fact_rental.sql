{{ cdc_current_state(
    source('bronze', 'br_rental_cdc'),
    key='rental_id',
    partition_by='rental_date',
    columns={
        'rental_id': 'integer',
        'rental_date': 'timestamptz',
        'inventory_id': 'integer',
        'customer_id': 'integer',
        'return_date': 'timestamptz',
        'staff_id': 'integer',
        'last_update': 'timestamptz',
    },
) }}
