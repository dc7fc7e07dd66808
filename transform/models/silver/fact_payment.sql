{{ cdc_current_state(
    source('bronze', 'br_payment_cdc'),
    key='payment_id',
    partition_by='payment_date',
    columns={
        'payment_id': 'integer',
        'customer_id': 'integer',
        'staff_id': 'integer',
        'rental_id': 'integer',
        'amount': 'numeric(5,2)',
        'payment_date': 'timestamptz',
    },
) }}
