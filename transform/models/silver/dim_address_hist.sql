{{ scd_system_versioned(
    source('bronze', 'br_address_cdc'),
    key='address_id',
    columns={
        'address_id': 'integer',
        'address': 'text',
        'address2': 'text',
        'district': 'text',
        'city_id': 'integer',
        'postal_code': 'text',
        'phone': 'text',
        'last_update': 'timestamptz',
    },
) }}
