{{ scd_system_versioned(
    source('bronze', 'br_inventory_cdc'),
    key='inventory_id',
    columns={
        'inventory_id': 'integer',
        'film_id': 'integer',
        'store_id': 'integer',
        'last_update': 'timestamptz',
    },
) }}
