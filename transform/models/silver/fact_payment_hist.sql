{#- The payments' history, for gold time travel (gold.*_as_of): one version per source
    transaction that changed a payment; as of: silver.fact_payment_as_of(ts). -#}
{{ scd_system_versioned(
    source('bronze', 'br_payment_cdc'),
    key='payment_id',
    columns=source_columns('payment'),
) }}
