{{ scd_system_versioned(
    source('bronze', 'br_customer_cdc'),
    key='customer_id',
    columns={
        'customer_id': 'integer',
        'store_id': 'integer',
        'first_name': 'text',
        'last_name': 'text',
        'email': 'text',
        'address_id': 'integer',
        'activebool': 'boolean',
        'create_date': 'date',
        'last_update': 'timestamptz',
        'active': 'integer',
    },
) }}
