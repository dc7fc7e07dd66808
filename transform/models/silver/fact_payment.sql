{{ cdc_current_state(
    source('bronze', 'br_payment_cdc'),
    key='payment_id',
    partition_by='payment_date',
    columns=source_columns('payment'),
) }}
