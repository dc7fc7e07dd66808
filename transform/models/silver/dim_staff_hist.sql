{{ scd_system_versioned(
    source('bronze', 'br_staff_cdc'),
    key='staff_id',
    columns={
        'staff_id': 'integer',
        'first_name': 'text',
        'last_name': 'text',
        'address_id': 'integer',
        'email': 'text',
        'store_id': 'integer',
        'active': 'boolean',
        'username': 'text',
        'last_update': 'timestamptz',
    },
) }}
