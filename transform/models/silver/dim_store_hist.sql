{{ scd_system_versioned(
    source('bronze', 'br_store_cdc'),
    key='store_id',
    columns={
        'store_id': 'integer',
        'manager_staff_id': 'integer',
        'address_id': 'integer',
        'last_update': 'timestamptz',
    },
) }}
