{#- The rentals' history, for gold time travel (gold.*_as_of): one version per source
    transaction that changed a rental (a return is a new version); as of:
    silver.fact_rental_as_of(ts). -#}
{{ scd_system_versioned(
    source('bronze', 'br_rental_cdc'),
    key='rental_id',
    columns=source_columns('rental'),
) }}
