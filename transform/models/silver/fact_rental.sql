{{ cdc_current_state(
    source('bronze', 'br_rental_cdc'),
    key='rental_id',
    partition_by='rental_date',
    columns=source_columns('rental'),
) }}
