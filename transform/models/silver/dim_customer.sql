with customer_history as (
    select * from {{ ref('dim_customer_hist') }}
),

final as (
    select
        customer_id,
        store_id,
        first_name,
        last_name,
        email,
        address_id,
        activebool,
        create_date,
        last_update,
        active,
        sys_start
    from customer_history
    where sys_end = 'infinity'
)

select * from final
